// Command kstatus-check tells how Flux reads PythonApp objects, answered by Flux's own
// libraries. Usage:
//
//	kstatus-check [-exprs FILE] FILE...
//	kstatus-check -version
//
// Each FILE holds Kubernetes objects as YAML (multi-document) or JSON. For every object it
// prints one JSON line with three verdicts, each {"status", "message", "error"}:
//
// "kstatus" is status.Compute from sigs.k8s.io/cli-utils, the kstatus library itself.
//
// "fluxKstatus" is the same from github.com/fluxcd/cli-utils, the fork kustomize-controller
// uses for `wait: true` when no healthCheckExprs entry matches the object.
//
// "healthCheckExprs" (only with -exprs FILE: a Flux Kustomization, or a bare list of entries)
// is the object read by Flux's own CEL status reader (github.com/fluxcd/pkg/runtime/cel, on
// github.com/google/cel-go) exactly as kustomize-controller reads it: the same CEL
// environment, the observedGeneration pre-check, the order inProgress, failed, current, and an
// evaluation error reported as Unknown.
//
// Built and cached by scripts/install-tools.sh (`make tools`); tests/gitops run it.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"

	fluxstatus "github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"github.com/fluxcd/pkg/apis/kustomize"
	fluxcel "github.com/fluxcd/pkg/runtime/cel"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/yaml"
)

type verdict struct {
	Status  string `json:"status"`
	Message string `json:"message"`
	Error   string `json:"error,omitempty"`
}

type line struct {
	File             string   `json:"file"`
	Name             string   `json:"name"`
	Kstatus          verdict  `json:"kstatus"`
	FluxKstatus      verdict  `json:"fluxKstatus"`
	HealthCheckExprs *verdict `json:"healthCheckExprs,omitempty"`
}

func main() {
	exprs := flag.String("exprs", "", "a Flux Kustomization (or a YAML list of healthCheckExprs entries)")
	version := flag.Bool("version", false, "print the versions of the libraries inside and exit")
	flag.Parse()
	if *version {
		printVersions()
		return
	}
	if flag.NArg() == 0 {
		fail(errors.New("usage: kstatus-check [-exprs FILE] FILE..."))
	}
	var checks []kustomize.CustomHealthCheck
	if *exprs != "" {
		var err error
		if checks, err = readChecks(*exprs); err != nil {
			fail(err)
		}
	}
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	enc := json.NewEncoder(out)
	for _, file := range flag.Args() {
		objects, err := readObjects(file)
		if err != nil {
			fail(err)
		}
		for _, u := range objects {
			l := line{File: file, Name: u.GetNamespace() + "/" + u.GetName()}
			l.Kstatus = compute(status.Compute(u))
			l.FluxKstatus = computeFlux(fluxstatus.Compute(u))
			if checks != nil {
				v, err := viaExpressions(checks, u)
				if err != nil {
					fail(err)
				}
				l.HealthCheckExprs = v
			}
			if err := enc.Encode(l); err != nil {
				fail(err)
			}
		}
	}
}

func compute(r *status.Result, err error) verdict {
	if err != nil {
		return verdict{Status: "Error", Error: err.Error()}
	}
	return verdict{Status: r.Status.String(), Message: r.Message}
}

func computeFlux(r *fluxstatus.Result, err error) verdict {
	if err != nil {
		return verdict{Status: "Error", Error: err.Error()}
	}
	return verdict{Status: r.Status.String(), Message: r.Message}
}

// viaExpressions reads the object with Flux's CEL status reader, as kustomize-controller does.
func viaExpressions(checks []kustomize.CustomHealthCheck, u *unstructured.Unstructured) (*verdict, error) {
	newReader, err := fluxcel.NewStatusReader(checks)
	if err != nil {
		return nil, err
	}
	reader := newReader(nil) // a RESTMapper is only needed for objects read from a cluster
	if !reader.Supports(u.GroupVersionKind().GroupKind()) {
		return &verdict{Status: "NoMatchingEntry"}, nil
	}
	res, err := reader.ReadStatusForObject(context.Background(), nil, u)
	if err != nil {
		return nil, err
	}
	v := &verdict{Status: res.Status.String(), Message: res.Message}
	if res.Error != nil {
		v.Error = res.Error.Error()
	}
	return v, nil
}

func readChecks(path string) ([]kustomize.CustomHealthCheck, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var ks struct {
		Spec struct {
			HealthCheckExprs json.RawMessage `json:"healthCheckExprs"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(data, &ks); err == nil && len(ks.Spec.HealthCheckExprs) > 0 {
		data = ks.Spec.HealthCheckExprs
	}
	// Strict: a misspelt key (inprogress, Failed, ...) is an error, not a silently empty check.
	var list []kustomize.CustomHealthCheck
	if err := yaml.UnmarshalStrict(data, &list); err != nil || len(list) == 0 {
		return nil, fmt.Errorf("%s: neither a Kustomization with spec.healthCheckExprs nor a list of entries (%v)", path, err)
	}
	return list, nil
}

func readObjects(path string) ([]*unstructured.Unstructured, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var objects []*unstructured.Unstructured
	docs := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := docs.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		js, err := yaml.YAMLToJSON(doc)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if string(js) == "null" {
			continue
		}
		// Decoded as objects from the API server are (integers stay int64, not float64).
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(js); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		objects = append(objects, u)
	}
	return objects, nil
}

func printVersions() {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		fail(errors.New("no build info"))
	}
	fmt.Printf("kstatus-check (%s)", info.GoVersion)
	for _, dep := range info.Deps {
		switch dep.Path {
		case "sigs.k8s.io/cli-utils", "github.com/fluxcd/cli-utils", "github.com/fluxcd/pkg/runtime",
			"github.com/google/cel-go":
			fmt.Printf(" %s@%s", dep.Path, dep.Version)
		}
	}
	fmt.Println()
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "kstatus-check:", err)
	os.Exit(2)
}
