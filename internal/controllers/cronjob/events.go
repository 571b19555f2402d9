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

// Event reasons a Decision can carry, for callers of Decide.
const (
	ReasonJobAlreadyActive   = reasonJobAlreadyActive
	ReasonMissSchedule       = reasonMissSchedule
	ReasonTooManyMissedTimes = reasonTooManyMissedTimes
	ReasonSawCompletedJob    = reasonSawCompletedJob
	ReasonInvalidSchedule    = reasonInvalidSchedule
	ReasonUnknownTimeZone    = reasonUnknownTimeZone
)
