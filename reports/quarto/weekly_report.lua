-- Fills weekly_report.qmd from the JSON params file (metadata `params-file`), the same data the
-- built-in HTML renderer uses (src/lib/reports/model.ts ReportData + `charts`, file names of SVGs).
-- Every value from the data becomes a pandoc Str, never parsed markdown or raw HTML, so user and
-- topic ids (untrusted input) are escaped by the writer. Needs pandoc >= 3.1.1 (pandoc.json);
-- Quarto >= 1.4 bundles it.

local json = pandoc.json
local null = json.null

local function isnull(v) return v == nil or v == null end

local function read_params(meta)
  local path = pandoc.utils.stringify(meta['params-file'] or 'report-data.json')
  local f = io.open(path, 'r')
  if not f then error('weekly_report.lua: cannot open params file ' .. path) end
  local s = f:read('a')
  f:close()
  return json.decode(s, false)
end

local function txt(s) return pandoc.Plain { pandoc.Str(tostring(s)) } end
local function para(s) return pandoc.Para { pandoc.Str(tostring(s)) } end
local function pct(v)
  if isnull(v) then return '—' end
  return string.format('%d%%', math.floor(v * 100 + 0.5))
end
local function fixed(v, d)
  if isnull(v) then return '—' end
  return string.format('%.' .. (d or 2) .. 'f', v)
end

local function table_of(headers, rows, aligns)
  local head = {}
  for _, h in ipairs(headers) do head[#head + 1] = { txt(h) } end
  local body = {}
  for _, r in ipairs(rows) do
    local row = {}
    for _, c in ipairs(r) do row[#row + 1] = { txt(c) } end
    body[#body + 1] = row
  end
  local al, widths = {}, {}
  for i = 1, #headers do
    al[i] = (aligns and aligns[i]) or pandoc.AlignDefault
    widths[i] = 0
  end
  return pandoc.utils.from_simple_table(pandoc.SimpleTable({}, al, widths, head, body))
end

local function image(src, alt)
  if isnull(src) then return nil end
  return pandoc.Para { pandoc.Image({ pandoc.Str(alt) }, src) }
end

local function sections(d)
  local R = pandoc.AlignRight
  local s = {}
  s['report-meta'] = { para(string.format('Learner %s · ISO week %s (%s to %s) · data as of %s', d.userId, d.isoWeek, d.weekStart, d.asOf, d.asOf)) }
  s['no-kpis'] = d.hasKpiRow and {} or { para('No KPIs were computed for this learner and week (no attempt in the KPI lookback).') }

  local g = {}
  local gauge = image(d.charts.gauge, 'Goal probability gauge')
  if gauge then g[#g + 1] = gauge end
  if isnull(d.goal.P) then
    g[#g + 1] = para('Goal probability: no ability estimate or goal to compare with yet.')
  else
    local ci = isnull(d.goal.ci) and 'no interval' or string.format('95%% interval %s–%s', pct(d.goal.ci[1]), pct(d.goal.ci[2]))
    g[#g + 1] = para(string.format('Goal probability %s (%s)%s', pct(d.goal.P), ci, isnull(d.goal.target) and '' or (', goal level ' .. fixed(d.goal.target))))
  end
  local churn = image(d.charts.churn, 'Churn risk')
  if churn then g[#g + 1] = churn end
  g[#g + 1] = para(isnull(d.churn.band) and 'Churn risk: no sessions in the last 8 weeks.' or string.format('Churn risk %s: %s (low < 30%% ≤ medium < 70%% ≤ high)', pct(d.churn.S), d.churn.band))
  s['goal'] = g

  local krows = {}
  for _, k in ipairs(d.kpis) do krows[#krows + 1] = { k.label, k.display, k.explanation } end
  s['kpis'] = { table_of({ 'Indicator', 'This week', 'What it means' }, krows, { pandoc.AlignDefault, R, pandoc.AlignDefault }) }

  if #d.theta == 0 then
    s['theta'] = { para('No ability estimates yet.') }
  else
    local last = d.theta[#d.theta]
    s['theta'] = { image(d.charts.theta, 'Ability trend with ±1 SE band'), para(string.format('Latest estimate %s%s on %s; band: ±1 standard error.', fixed(last.theta), isnull(last.se) and '' or (' ± ' .. fixed(last.se)), last.date)) }
  end

  local week, total = 0, 0
  for i, x in ipairs(d.daily) do
    total = total + x.attempts
    if i > #d.daily - 7 then week = week + x.attempts end
  end
  s['daily'] = { image(d.charts.daily, 'Attempts per day'), para(string.format('%d attempts this week (shaded), %d in the last 4 weeks.', week, total)) }

  if #d.topics == 0 then
    s['topics'] = { para('No attempts in the last 4 weeks.') }
  else
    local trows = {}
    for _, t in ipairs(d.topics) do
      trows[#trows + 1] = { t.topicId, tostring(t.attempts), pct(t.accuracy), tostring(t.weekAttempts), t.weekAttempts > 0 and pct(t.weekCorrect / t.weekAttempts) or '—' }
    end
    s['topics'] = { image(d.charts.topics, 'Accuracy per topic'), table_of({ 'Topic', 'Attempts (4 wk)', 'Accuracy (4 wk)', 'Attempts (week)', 'Accuracy (week)' }, trows, { pandoc.AlignDefault, R, R, R, R }) }
  end

  if #d.goals == 0 then
    s['goals'] = { para('No goals set.') }
  else
    local grows = {}
    for _, x in ipairs(d.goals) do grows[#grows + 1] = { x.topicId, fixed(x.targetLevel), isnull(x.priority) and '—' or tostring(x.priority) } end
    s['goals'] = { table_of({ 'Topic', 'Target level', 'Priority' }, grows, { pandoc.AlignDefault, R, R }) }
  end

  local items = {}
  for _, r in ipairs(d.recommendations) do items[#items + 1] = { txt(r.text) } end
  s['recommendations'] = { pandoc.BulletList(items) }
  return s
end

function Pandoc(doc)
  local d = read_params(doc.meta)
  local filled = sections(d)
  doc.meta.subtitle = pandoc.MetaInlines { pandoc.Str(d.userId .. ' · ' .. d.isoWeek) }
  doc.meta.pagetitle = pandoc.MetaInlines { pandoc.Str('Weekly report ' .. d.isoWeek .. ' · ' .. d.userId) }
  doc.blocks = doc.blocks:walk {
    Div = function(div)
      local content = filled[div.identifier]
      if content == nil then return nil end
      local blocks = {}
      for _, b in ipairs(content) do if b then blocks[#blocks + 1] = b end end
      div.content = blocks
      return div
    end,
  }
  return doc
end
