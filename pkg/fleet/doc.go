// Package fleet lets several `experiment serve` relays share one Redis:
// one writer per deployment (a lease), the exact upstream flag bodies and
// cohorts stored once for the fleet, change notices on pub/sub, and a
// fleet-wide de-duplication of forwarded events.
//
// Redis is never on a request's path: a Relay serves from memory (a
// server.Store) and only its background loops talk to Redis, each call
// bounded by a short deadline. When Redis cannot be reached a Relay syncs
// from Amplitude by itself ("alone") and rejoins the fleet when Redis
// returns. Keys hold hashes of deployment keys, never the keys; the key
// model and failure modes are in docs/serve.md#fleet.
package fleet
