package job

// Event reasons, equal to upstream's where upstream has one. Pod creations
// and deletions are reported by kit.PodWriter.
const (
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
