package experiment

// What the package's own external tests (package experiment_test) reach
// that is not part of its API.
var (
	DecodeVariants       = decodeVariants
	ExposureEvents       = exposureEvents
	AssignmentEvent      = assignmentEvent
	NewAssignmentService = newAssignmentService
)

const (
	DefaultStartTimeout = defaultStartTimeout
	AssignmentEventType = assignmentEventType
	ExposureEventType   = exposureEventType
)
