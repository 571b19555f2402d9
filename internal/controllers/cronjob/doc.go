// Package cronjob is quartet's CronJob controller: it creates one Job per
// scheduled time of every CronJob, applies concurrencyPolicy,
// startingDeadlineSeconds and suspend, prunes finished Jobs past the history
// limits and keeps status.active, lastScheduleTime and lastSuccessfulTime.
//
// The controller reads from shared informers and sleeps on a delaying queue
// until each CronJob's next scheduled time (controller.go), decides in a pure
// function (plan.go, with the time arithmetic in the schedule subpackage) and
// writes through small interfaces (apply.go).
package cronjob
