package bench

import (
	"fmt"
	"os"
	"path/filepath"
)

// RunStatefulDeclared is the stateful run's topology declared in a file
// (package declare) instead of built in Go: the same count per key, so its
// ratio to the Go run, in the same bench, is what a declared topology costs.
const RunStatefulDeclared = "stateful-declared"

// DeclaredStatefulFile writes the file declaring StatefulTopology(input) to
// dir and returns its path: the same source (string keys, byte values), the
// count per key into store StoreCounts, every update to StatefulOutput(input)
// as an int64. Its application.id is overridden by the runner's --set.
func DeclaredStatefulFile(dir, input string) (string, error) {
	doc := fmt.Sprintf(`# The bench's stateful topology, declared (bench.StatefulTopology in Go).
application:
  id: bench-stateful-declared
sources:
  in: {topic: %q, key: string, value: bytes}
streams:
  counts:
    from: in
    steps:
      - groupByKey: true
      - count: {store: %s}
      - toStream: true
      - to: {topic: %q, value: int64}
`, input, StoreCounts, StatefulOutput(input))
	path := filepath.Join(dir, "stateful-declared.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		return "", fmt.Errorf("bench: declared topology: %w", err)
	}
	return path, nil
}
