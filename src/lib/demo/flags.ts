import { Flags } from '@oclif/core'

export const seedFlags = {
  learners: Flags.integer({ description: 'Learners to generate.', default: 300 }),
  items: Flags.integer({ description: 'Questions in the bank.', default: 160 }),
  days: Flags.integer({ description: 'Days of activity, ending at --date.', default: 60 }),
  seed: Flags.integer({ description: 'Random seed (same seed, same data).', default: 42 }),
}
