package cronjob

// Event reasons, each the one Kubernetes' own CronJob controller gives in the
// same situation, so alerts and scripts written for it keep working (those of
// creating and deleting a Job are kit's). The exported ones are those callers
// of Decide look for in a Decision.
const (
	reasonFailedGet           = "FailedGet"
	reasonSawCompletedJob     = "SawCompletedJob"
	reasonUnexpectedJob       = "UnexpectedJob"
	reasonMissingJob          = "MissingJob"
	ReasonJobAlreadyActive    = "JobAlreadyActive"
	ReasonMissSchedule        = "MissSchedule"
	ReasonTooManyMissedTimes  = "TooManyMissedTimes"
	ReasonUnknownTimeZone     = "UnknownTimeZone"
	reasonUnparseableSchedule = "UnparseableSchedule"
	ReasonInvalidSchedule     = "InvalidSchedule"
	reasonUnsupportedSchedule = "UnsupportedSchedule"
	// reasonUnparseableOnUpdate is the reason given when an edit makes the
	// schedule unparseable; Kubernetes spells it differently from the one
	// given during a sync, and so does quartet.
	reasonUnparseableOnUpdate = "UnParseableCronJobSchedule"
)
