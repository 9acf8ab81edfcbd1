// strictfields rejects fields the Kubernetes API does not declare (a misspelt
// `readinesProbe` or a key at the wrong depth), which the OpenAPI validators
// of test/helm/validate-manifests.ts let through: kubernetes-models' schemas do
// not forbid additional properties, and the API server would silently drop
// such a field (or, with kubectl's strict field validation, reject the apply).
//
// It types every object with client-go's server-side-apply schema (the same
// structured-merge-diff schema the API server uses), which fails on any field
// not declared for that kind and on scalars of the wrong type. CRD kinds are
// skipped here with a printed reason; their schemas are checked by
// validate-manifests.ts.
//
//	go run . rendered.yaml...
package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/applyconfigurations"
	"k8s.io/client-go/kubernetes/scheme"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: strictfields rendered.yaml...")
		os.Exit(2)
	}
	converter := applyconfigurations.NewTypeConverter(scheme.Scheme)
	failed, checked := 0, 0
	for _, file := range os.Args[1:] {
		data, err := os.ReadFile(file)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		decoder := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			var obj map[string]interface{}
			if err := decoder.Decode(&obj); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				fmt.Fprintf(os.Stderr, "  %s: %v\n", file, err)
				failed++
				break
			}
			if obj == nil {
				continue
			}
			u := &unstructured.Unstructured{Object: obj}
			id := fmt.Sprintf("%s: %s/%s", file, u.GetKind(), u.GetName())
			if !scheme.Scheme.Recognizes(u.GroupVersionKind()) {
				fmt.Printf("  %s: %s is a CRD kind, not in client-go's schema: fields checked by validate-manifests.ts only\n", id, u.GroupVersionKind().GroupVersion())
				continue
			}
			checked++
			if _, err := converter.ObjectToTyped(u); err != nil {
				fmt.Fprintf(os.Stderr, "  %s: %v\n", id, err)
				failed++
			}
		}
	}
	if failed > 0 {
		fmt.Fprintf(os.Stderr, "%d object(s) with undeclared or mistyped fields\n", failed)
		os.Exit(1)
	}
	fmt.Printf("  %d objects: every field declared by the Kubernetes API\n", checked)
}
