// Package cronjob is quartet's CronJob controller: it creates one Job per
// scheduled time of every CronJob, applies concurrencyPolicy,
// startingDeadlineSeconds and suspend, prunes finished Jobs past the history
// limits and keeps status.active, lastScheduleTime and lastSuccessfulTime.
//
// controller.go sleeps on a delaying queue until each CronJob's next scheduled
// time and reads its Jobs from the shared informer; plan.go holds the
// decision, Decide, a pure function of what a sync observed (the time
// arithmetic is in the schedule subpackage), which `quartet cron simulate`
// runs too; apply.go makes the writes, leaving the status write after a create
// to the CronJob's next sync so that a burst of firings creates its Jobs
// first. docs/cronjob.md lists how it differs from upstream's (wake-up margin,
// missed-schedule reporting, UID preconditions, that status write).
package cronjob
