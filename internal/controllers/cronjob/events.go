package cronjob

// Event reasons. Each equals the reason Kubernetes' own CronJob controller
// gives in the same situation, so alerts and scripts written for it keep
// working.
const (
	reasonSuccessfulCreate    = "SuccessfulCreate"
	reasonFailedCreate        = "FailedCreate"
	reasonSuccessfulDelete    = "SuccessfulDelete"
	reasonFailedDelete        = "FailedDelete"
	reasonFailedGet           = "FailedGet"
	reasonSawCompletedJob     = "SawCompletedJob"
	reasonUnexpectedJob       = "UnexpectedJob"
	reasonMissingJob          = "MissingJob"
	reasonJobAlreadyActive    = "JobAlreadyActive"
	reasonMissSchedule        = "MissSchedule"
	reasonTooManyMissedTimes  = "TooManyMissedTimes"
	reasonUnknownTimeZone     = "UnknownTimeZone"
	reasonUnparseableSchedule = "UnparseableSchedule"
	reasonInvalidSchedule     = "InvalidSchedule"
	reasonUnsupportedSchedule = "UnsupportedSchedule"
	// reasonUnparseableOnUpdate is the reason given when an edit makes the
	// schedule unparseable; Kubernetes spells it differently from the one
	// given during a sync, and so does quartet.
	reasonUnparseableOnUpdate = "UnParseableCronJobSchedule"
)

// event is an event the plan wants recorded on the CronJob.
type event struct {
	eventType string // corev1.EventTypeNormal or corev1.EventTypeWarning
	reason    string
	message   string
}
