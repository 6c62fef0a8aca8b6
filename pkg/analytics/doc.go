// Package analytics is a client for Amplitude's HTTP V2 analytics API
// (POST /2/httpapi, or /batch): a Client queues events and sends them in
// the background, in batches under the API's limits (2000 events and 1 MB
// a request), several requests at once, retrying failures with capped
// exponential backoff and the server's Retry-After, splitting a batch the
// server finds too large (413) and dropping only the events a 400 names.
// Its settings (Config) and defaults are those of Amplitude's Python
// analytics client.
//
// The queue is bounded: when it is full, Track drops the oldest events or
// waits for room (Config.Overflow). Nothing is lost silently: Stats counts
// every event, and Close returns a *LostEventsError saying how many were
// lost and why (errors.Is(err, ErrAPIKeyRejected) for a rejected key).
//
//	client, err := analytics.NewClient(analytics.Config{APIKey: apiKey})
//	...
//	client.Track(analytics.Event{EventType: "signed up", UserID: "user@company.com"})
//	...
//	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
//	defer cancel()
//	err = client.Close(ctx) // sends what is queued
//
// A Printer writes events as JSON Lines instead, for a dry run. The
// exposure and assignment tracking of package experiment is built on this
// package; package analyticstest serves a fake of the API for tests.
package analytics
