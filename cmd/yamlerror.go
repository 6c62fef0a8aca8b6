package cmd

import (
	"errors"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// yamlError puts an error of yaml.Unmarshal on one line (a type error lists
// each problem on a line of its own) and drops the values it quotes: the
// start of a key that sits where a map was expected must not be printed.
func yamlError(err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err
	}
	msgs := make([]string, len(te.Errors))
	for i, m := range te.Errors {
		// "line 3: cannot unmarshal !!str `server-...` into map[string]string"
		if start := strings.Index(m, " `"); start >= 0 {
			if end := strings.LastIndex(m, "` "); end > start {
				m = m[:start] + m[end+1:]
			}
		}
		msgs[i] = m
	}
	return fmt.Errorf("yaml: %s", strings.Join(msgs, "; "))
}
