import { Flags } from '@oclif/core'

/** KPI knobs shared by compute-kpis and detect-inactivity (P and S use the same ones). */
export const kpiFlags = {
  target: Flags.string({ description: 'Default goal θ for P when a user has no interest_goal [env METRICS_DEFAULT_TARGET, default 0.0]. Negative: --target=-0.5.' }),
  bayesian: Flags.boolean({ description: 'Posterior-predictive P (σ² = se² + τ²·h), stores kpis.P_ci and kpis.sigma [env METRICS_USE_BAYESIAN].', allowNo: true }),
  'goal-weeks': Flags.string({ description: 'h, weeks to the goal date for the Bayesian P [env METRICS_GOAL_WEEKS, default 1].' }),
  'churn-horizon-days': Flags.integer({ description: 'H in the churn risk S [env METRICS_CHURN_HORIZON_DAYS, default 14].' }),
}
