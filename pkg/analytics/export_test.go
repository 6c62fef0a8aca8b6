package analytics

// Waiting is how many events of producers blocked for room are not queued
// yet: the package's external tests wait on it to know that a producer has
// reached the wait, where a sleep would only make that likely.
func (c *Client) Waiting() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.waiting
}
