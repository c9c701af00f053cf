package bench

// The goka peer: bench/goka, its own Go module (so that eos-runner does not
// depend on goka, sarama or LevelDB), builds `goka-count`, the stateful
// topology's job written with github.com/lovoo/goka. The bench runs it as
// one more throughput configuration, paired with a raw copy like the rest.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// DefaultGokaBinary is where `make bench` builds the goka peer, relative to
// the working directory; Config.GokaBinary defaults to it when it exists.
const DefaultGokaBinary = "bin/goka-count"

// gokaBuildHint says how to build the goka peer, for the warning logged
// when it is absent.
const gokaBuildHint = "cd bench/goka && go build -o ../../bin/goka-count . (make bench does it)"

// GokaTableTopic is the group table goka keeps for group: goka's own name
// for it (goka.GroupTable), `<group>-table`.
func GokaTableTopic(group string) string { return group + "-table" }

// resolveGokaBinary returns the goka peer's executable as an absolute path:
// path if set (an error if it is not there: it was asked for), else
// DefaultGokaBinary if it exists, else "" (the goka runs are then skipped).
func resolveGokaBinary(path string) (string, error) {
	explicit := path != ""
	if !explicit {
		path = DefaultGokaBinary
	}
	fi, err := os.Stat(path)
	switch {
	case err == nil && fi.IsDir():
		return "", fmt.Errorf("goka binary %s: is a directory", path)
	case errors.Is(err, fs.ErrNotExist) && !explicit:
		return "", nil
	case err != nil:
		return "", fmt.Errorf("goka binary: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("goka binary: %w", err)
	}
	return abs, nil
}

// gokaArgs are the arguments of goka-count for one run: group is also the
// consumer group the bench watches, and names the table topic.
func gokaArgs(brokers, input, output, group, storageDir string) []string {
	return []string{"--brokers", brokers, "--input", input, "--output", output, "--group", group,
		"--storage-dir", storageDir}
}
