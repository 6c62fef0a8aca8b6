// Package httpx holds the HTTP mechanics the SDK's clients share: the
// remote evaluation and flag config clients (pkg/experiment), the cohort
// download client (pkg/cohort) and the analytics client (pkg/analytics).
// Each piece had been written several times over, each copy a little
// different: a context-aware sleep, the Retry-After header, an error body
// made fit for an error line, the drain-and-close that keeps a connection
// reusable, the *url.Error whose message repeats a URL with its
// credentials, the check of a configured server URL, a client with a
// transport of its own, and the base64 decoding, lenient about alphabet and
// padding, of what clients send in a header or a cookie (pkg/server,
// pkg/cookie, experimenttest).
//
// What httpx does not share is the retry policy: each client keeps the one
// of the Amplitude SDK it mirrors, so that a service treats Amplitude's
// servers as the official SDKs do. Side by side (n counts retries from 0;
// "4xx" means the 4xx statuses not named otherwise in that row):
//
//	client            attempts          delay before retry n               retried                  final at once
//	----------------  ----------------  ---------------------------------  -----------------------  -------------------------
//	remote fetch      1+FetchRetries    uniform in [0, min(500ms*1.5^n,    no answer, timeout,      4xx (401/403 are
//	(experiment)      (1 by default)    10s)] (RetryBackoff*); a longer    malformed 200, 429,      ErrUnauthorized),
//	                                    Retry-After wins                   5xx, other statuses      Retry-After over 1 min,
//	                                                                                                no time left in ctx
//	flag configs,     1 per poll        the next poll, sooner: uniform in  any other failure        401/403 (polling stops)
//	polling                             [10ms, min(1s*2^n, interval)]
//	(experiment)
//	FetchFlagConfigs  1+8               uniform in [10ms, min(500ms*2^n,   as remote fetch          as remote fetch; pull
//	PullFlagConfigs                     10s)]; a longer Retry-After wins                            also a refused connection
//	(experiment)                                                                                    and a cache write error
//	cohort download   3                 100ms                              no answer, a stall,      401/403, 404, 413, 4xx,
//	(cohort)                                                               malformed 200, 202,      204 without a stored
//	                                                                       429, 5xx                 copy; Timeout in all
//	analytics events  1+FlushMaxRetries uniform in [b/2, b], b doubling    no answer, timeout,      400 (only the events it
//	(analytics)       (13 by default)   from 100ms to 3.2s; a 429's or     408, 429 (users over     names are dropped, the
//	                                    503's Retry-After wins, up to      their daily quota        rest resent at once),
//	                                    1 min                              dropped first), 5xx      413 of one event (more
//	                                                                                                are split in halves), 4xx
package httpx
