// Command official-evaluate is the official SDK's side of the single-shot
// comparison: what `experiment evaluate --flags FILE --user-id ID` does, done
// with Amplitude's local evaluation client. The client only fetches flags
// over HTTP, so the file is served from a local server in the same process.
//
//	official-evaluate FILE USER_ID
package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/amplitude/experiment-go-server/pkg/experiment"
	"github.com/amplitude/experiment-go-server/pkg/experiment/local"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: official-evaluate FILE USER_ID")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "official-evaluate:", err)
		os.Exit(1)
	}
}

func run(path, userID string) error {
	doc, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(doc)
	}))
	client := local.Initialize("server-official-evaluate", &local.Config{
		ServerUrl:                "http://" + ln.Addr().String(),
		FlagConfigPollerInterval: 24 * time.Hour,
	})
	if err := client.Start(); err != nil {
		return err
	}
	variants, err := client.EvaluateV2(&experiment.User{UserId: userID}, nil)
	if err != nil {
		return err
	}
	out, err := json.MarshalIndent(variants, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Printf("%s\n", out)
	return err
}
