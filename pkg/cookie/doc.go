// Package cookie reads and writes the identity cookie that Amplitude's
// browser SDKs set, so a server can evaluate flags for the same device and
// user the browser already identified. It mirrors the Python SDK's
// AmplitudeCookie (cookie_name, parse, generate) but returns errors where
// Python raises or silently returns an empty user.
//
// Two formats exist. [Legacy] is amplitude-js: the cookie amp_<key[:6]> holds
// "deviceId.base64(userId).…". [BrowserSDK2] is Browser SDK 2.0 (Python's
// new_format): AMP_<key[:10]> holds base64(urlencode(json)).
//
// The package performs no I/O, logs nothing and holds no mutable state; every
// function is safe for concurrent use. Parsing never panics, whatever the
// input (the fuzz targets check this).
package cookie
