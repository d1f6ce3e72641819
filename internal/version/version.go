// Package version holds the btcmesh version, set at link time.
package version

// Version is the btcmesh release, overridden with -ldflags -X.
var Version = "0.1.0-dev"

// UserAgent is the BIP14 user agent btcmesh announces to peers.
func UserAgent() string { return "/btcmesh:" + Version + "/" }
