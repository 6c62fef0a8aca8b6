package eval

// LoadOwned is Load for a document handed over to the Snapshot: it keeps
// data itself rather than a copy, so the caller must not modify data
// afterwards. A client that has just read a response of hundreds of
// megabytes into a buffer of its own spares holding it twice.
func LoadOwned(data []byte) (*Snapshot, error) { return load(data, false) }
