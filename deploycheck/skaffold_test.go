package deploycheck

import (
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// skaffoldConfig is the part of the skaffold schema (v4beta11) that
// skaffold.yaml uses. Decoding is strict, so a field skaffold would not
// know (or one this check does not know) fails the test.
type skaffoldConfig struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Build       skaffoldBuild         `json:"build"`
	Manifests   skaffoldManifests     `json:"manifests"`
	Deploy      map[string]any        `json:"deploy"`
	PortForward []skaffoldPortForward `json:"portForward"`
	Profiles    []struct {
		Name    string `json:"name"`
		Patches []struct {
			Op    string `json:"op"`
			Path  string `json:"path"`
			Value any    `json:"value"`
		} `json:"patches,omitempty"`
		Build       *skaffoldBuild        `json:"build,omitempty"`
		Manifests   *skaffoldManifests    `json:"manifests,omitempty"`
		PortForward []skaffoldPortForward `json:"portForward,omitempty"`
	} `json:"profiles"`
}

type skaffoldBuild struct {
	Local *struct {
		Push        *bool `json:"push,omitempty"`
		UseBuildkit *bool `json:"useBuildkit,omitempty"`
		Concurrency *int  `json:"concurrency,omitempty"`
	} `json:"local,omitempty"`
	Artifacts []struct {
		Image   string `json:"image"`
		Context string `json:"context"`
		Docker  struct {
			Dockerfile string `json:"dockerfile"`
		} `json:"docker"`
	} `json:"artifacts,omitempty"`
}

type skaffoldManifests struct {
	Kustomize struct {
		Paths []string `json:"paths"`
	} `json:"kustomize"`
}

type skaffoldPortForward struct {
	ResourceType string `json:"resourceType"`
	ResourceName string `json:"resourceName"`
	Namespace    string `json:"namespace"`
	Port         int    `json:"port"`
	LocalPort    int    `json:"localPort"`
}

func loadSkaffold(t *testing.T) skaffoldConfig {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "skaffold.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c skaffoldConfig
	if err := yaml.UnmarshalStrict(b, &c); err != nil {
		t.Fatalf("skaffold.yaml: %v", err)
	}
	return c
}

// jsonPathExists reports whether a JSON pointer (object keys only) names a
// node of skaffold.yaml.
func jsonPathExists(t *testing.T, pointer string) bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "skaffold.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var node any
	if err := yaml.Unmarshal(b, &node); err != nil {
		t.Fatal(err)
	}
	for _, key := range strings.Split(strings.Trim(pointer, "/"), "/") {
		if key == "" {
			continue
		}
		m, ok := node.(map[string]any)
		if !ok {
			return false
		}
		if node, ok = m[key]; !ok {
			return false
		}
	}
	return true
}

// skaffoldArtifacts is the set of images skaffold builds.
func skaffoldArtifacts(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, a := range loadSkaffold(t).Build.Artifacts {
		out[a.Image] = true
	}
	return out
}

func TestSkaffold(t *testing.T) {
	c := loadSkaffold(t)
	if c.APIVersion != "skaffold/v4beta11" || c.Kind != "Config" {
		t.Errorf("apiVersion %q kind %q, want skaffold/v4beta11 Config", c.APIVersion, c.Kind)
	}
	if c.Build.Local == nil || c.Build.Local.UseBuildkit == nil || !*c.Build.Local.UseBuildkit {
		t.Error("build.local.useBuildkit must be true: the Dockerfiles use BuildKit cache mounts")
	}
	var images []string
	for _, a := range c.Build.Artifacts {
		images = append(images, a.Image)
		name := filepath.Base(a.Image)
		if _, ok := serviceNamed(name); !ok {
			t.Errorf("artifact %s is not a service image", a.Image)
			continue
		}
		if a.Image != "titanium/"+name {
			t.Errorf("artifact %s, want titanium/%s", a.Image, name)
		}
		if a.Context != "." {
			t.Errorf("artifact %s: context %q, want the repository root (go.work)", a.Image, a.Context)
		}
		if a.Docker.Dockerfile != name+"/Dockerfile" {
			t.Errorf("artifact %s: dockerfile %q, want %s/Dockerfile", a.Image, a.Docker.Dockerfile, name)
		}
		if _, err := os.Stat(filepath.Join(repoRoot(t), a.Docker.Dockerfile)); err != nil {
			t.Errorf("artifact %s: %v", a.Image, err)
		}
	}
	if len(images) != len(services) || len(slices.Compact(slices.Sorted(slices.Values(images)))) != len(services) {
		t.Errorf("artifacts %v, want one per service (%d)", images, len(services))
	}
	if !slices.Equal(c.Manifests.Kustomize.Paths, []string{"k8s-manifests/overlays/local"}) {
		t.Errorf("manifests.kustomize.paths %v, want the local overlay", c.Manifests.Kustomize.Paths)
	}
	if _, ok := c.Deploy["kubectl"]; !ok {
		t.Errorf("deploy %v, want kubectl", c.Deploy)
	}
	want := skaffoldPortForward{ResourceType: "service", ResourceName: "local-load-balancer-service", Namespace: "titanium-local", Port: 7100, LocalPort: 7100}
	if len(c.PortForward) != 1 || c.PortForward[0] != want {
		t.Errorf("portForward %+v, want %+v", c.PortForward, want)
	}
	// The forwarded Service exists in the rendered overlay with that port.
	r := render(t, "k8s-manifests/overlays/local")
	svc, ok := r.services[want.ResourceName]
	if !ok || svc.Namespace != want.Namespace || svc.Spec.Ports[0].Port != int32(want.Port) {
		t.Errorf("port-forwarded Service %s/%s:%d is not in the local overlay", want.Namespace, want.ResourceName, want.Port)
	}
	for _, p := range c.Profiles {
		for _, patch := range p.Patches {
			// A profile's JSON patch applies to this file: the parent of
			// the patched path must exist, or skaffold refuses the profile.
			if !jsonPathExists(t, path.Dir(patch.Path)) {
				t.Errorf("profile %s patches %s, whose parent does not exist", p.Name, patch.Path)
			}
		}
		if p.Manifests == nil {
			continue
		}
		for _, path := range p.Manifests.Kustomize.Paths {
			if _, err := os.Stat(filepath.Join(repoRoot(t), path, "kustomization.yaml")); err != nil {
				t.Errorf("profile %s: %v", p.Name, err)
			}
		}
	}
}
