package job

// Event reasons, equal to upstream's where upstream has one.
const (
	ReasonSuccessfulCreate      = "SuccessfulCreate"
	ReasonFailedCreate          = "FailedCreate"
	ReasonSuccessfulDelete      = "SuccessfulDelete"
	ReasonFailedDelete          = "FailedDelete"
	ReasonCompleted             = "Completed"
	ReasonTooManySucceededPods  = "TooManySucceededPods"
	ReasonSuspended             = "Suspended"
	ReasonResumed               = "Resumed"
	ReasonUnknownCompletionMode = "UnknownCompletionMode"

	// ReasonInvalidBackoff is quartet's own: a quartet.dev/backoff-*
	// annotation could not be used and upstream's default applies.
	ReasonInvalidBackoff = "InvalidBackoffAnnotation"
)

// The Job's failure events carry the reason of its Failed condition:
// BackoffLimitExceeded, DeadlineExceeded, PodFailurePolicy,
// MaxFailedIndexesExceeded or FailedIndexes.
