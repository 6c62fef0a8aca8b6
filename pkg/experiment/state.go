package experiment

// State is where a LocalClient stands with its flag configs: the
// Status.State it reports. The values are strings so that they print and
// encode as themselves (the CLI shows them); compare with the constants.
type State string

// The states of a LocalClient, in the order a client usually passes them.
const (
	// StateStarting: no flag configs yet; evaluations fail with
	// ErrNotStarted.
	StateStarting State = "starting"
	// StateReady: the last update succeeded; the flags in use are current.
	StateReady State = "ready"
	// StateInterrupted: the last update failed, or the flags came from the
	// cache; the flags in use are the last good ones and may be stale.
	StateInterrupted State = "interrupted"
	// StateClosed: Close was called; nothing is fetched any more.
	StateClosed State = "closed"
)

// Source is where a copy of data in use came from: the flag configs
// (Status.Source) or a cohort's members (CohortStatus.Source).
type Source string

// The sources of flag configs and cohorts.
const (
	// SourceNone: no copy is in use.
	SourceNone Source = ""
	// SourceServer: fetched (or confirmed unchanged) from Amplitude's
	// servers by this client.
	SourceServer Source = "server"
	// SourceStream: pushed by the flag stream (LocalConfig.StreamUpdates).
	SourceStream Source = "stream"
	// SourceCache: read from the cache directory, written by an earlier
	// run or another process; it may be old.
	SourceCache Source = "cache"
)
