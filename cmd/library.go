package cmd

// cliLibrary is what the CLI calls itself to Amplitude
// ("experiment-go-cli/<version>"): in X-Amp-Exp-Library, a fetched user's
// "library" and each event's. The SDK's own default names the SDK
// ("experiment-go/<version>"), so every configuration the CLI makes sets
// its Library to this.
func cliLibrary() string { return "experiment-go-cli/" + currentVersion().Version }
