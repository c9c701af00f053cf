package declare

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

// TestJSONSchema: every declared example (and the equivalence cases) is
// valid by topology.schema.json, the schema editors use, and a file with an
// unknown key is not.
func TestJSONSchema(t *testing.T) {
	c := jsonschema.NewCompiler()
	sch, err := c.Compile("topology.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	validate := func(name string, data []byte) error {
		var doc any
		if err := yaml.Unmarshal(data, &doc); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return sch.Validate(doc)
	}
	files, _ := filepath.Glob("../examples/declared/*/topology.yaml")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := validate(f, data); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	for _, c := range equivCases {
		if err := validate(c.name, []byte(c.yaml)); err != nil {
			t.Errorf("case %s: %v", c.name, err)
		}
	}
	bad := strings.Replace(equivCases[0].yaml, "filterNot:", "filterNott:", 1)
	if err := validate("bad", []byte(bad)); err == nil {
		t.Error("a step with an unknown key validated")
	}
}
