package main

import (
	"path"
	"slices"
	"strings"
	"testing"
)

// checkComposeAuth checks that every node of the compose file wants API
// tokens and reads its bootstrap token from a file that a one-shot
// `mamba auth token generate --file` service writes, on a volume both
// mount, and that the nodes start only after it completed.
func checkComposeAuth(t *testing.T, file string, nodes, tokenJobs map[string]map[string]any) {
	t.Helper()
	if len(tokenJobs) != 1 {
		t.Fatalf("%s: want one service running mamba auth token generate, found %d", file, len(tokenJobs))
	}
	var jobName, jobFile, jobVolume string
	for name, svc := range tokenJobs {
		jobName = name
		cmd := strs(svc["command"])
		if i := slices.Index(cmd, "--file"); i >= 0 && i+1 < len(cmd) {
			jobFile = cmd[i+1]
		}
		jobVolume = volumeAt(strs(svc["volumes"]), path.Dir(jobFile))
		if jobFile == "" || jobVolume == "" || strings.HasSuffix(jobVolume, ":ro") {
			t.Errorf("%s: service %s writes %q, which is on no writable volume (%v)", file, name, jobFile, svc["volumes"])
		}
		if r := str(svc["restart"]); r != "no" {
			t.Errorf("%s: service %s is one-shot; restart %q, want no", file, name, r)
		}
	}
	for name, svc := range nodes {
		where := file + ": service " + name
		env := envOf(svc["environment"])
		if env["MAMBA_AUTH"] != "true" || env["MAMBA_INSECURE_NO_AUTH"] != "" {
			t.Errorf("%s: MAMBA_AUTH=%q, MAMBA_INSECURE_NO_AUTH=%q; the deploy files run with authentication on", where, env["MAMBA_AUTH"], env["MAMBA_INSECURE_NO_AUTH"])
		}
		if f := env["MAMBA_BOOTSTRAP_TOKEN_FILE"]; f != jobFile {
			t.Errorf("%s: MAMBA_BOOTSTRAP_TOKEN_FILE=%q, but %s writes %q", where, f, jobName, jobFile)
		}
		if v := volumeAt(strs(svc["volumes"]), path.Dir(jobFile)); strings.Split(v, ":")[0] != strings.Split(jobVolume, ":")[0] {
			t.Errorf("%s: mounts %q at %s, %s wrote the token to %q", where, v, path.Dir(jobFile), jobName, jobVolume)
		}
		if c := str(dig(svc, "depends_on", jobName, "condition")); c != "service_completed_successfully" {
			t.Errorf("%s: depends on %s with condition %q, want service_completed_successfully", where, jobName, c)
		}
	}
}

// volumeAt returns the compose volume entry ("name:dir[:ro]") mounted at
// dir, or "".
func volumeAt(volumes []string, dir string) string {
	for _, v := range volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && parts[1] == dir {
			return v
		}
	}
	return ""
}

// checkKubernetesAuth checks that the node Deployment wants API tokens
// and reads its bootstrap token from the Secret the kustomization
// generates, mounted read-only where MAMBA_BOOTSTRAP_TOKEN_FILE points.
func checkKubernetesAuth(t *testing.T, where string, env map[string]string, c, pod map[string]any, kustomization yamlDoc) {
	t.Helper()
	if env["MAMBA_AUTH"] != "true" || env["MAMBA_INSECURE_NO_AUTH"] != "" {
		t.Errorf("%s: MAMBA_AUTH=%q, MAMBA_INSECURE_NO_AUTH=%q; the deploy files run with authentication on", where, env["MAMBA_AUTH"], env["MAMBA_INSECURE_NO_AUTH"])
	}
	file := env["MAMBA_BOOTSTRAP_TOKEN_FILE"]
	if file == "" {
		t.Fatalf("%s: MAMBA_BOOTSTRAP_TOKEN_FILE is not set", where)
	}
	var volName string
	for _, vm := range list(c["volumeMounts"]) {
		if str(dig(vm, "mountPath")) == path.Dir(file) {
			volName = str(dig(vm, "name"))
			if dig(vm, "readOnly") != true {
				t.Errorf("%s: the token's volume is not mounted readOnly", where)
			}
		}
	}
	var secret string
	for _, v := range list(pod["volumes"]) {
		if str(dig(v, "name")) != volName || volName == "" {
			continue
		}
		secret = str(dig(v, "secret", "secretName"))
		found := false
		for _, it := range list(dig(v, "secret", "items")) {
			found = found || str(dig(it, "path")) == path.Base(file)
		}
		if !found {
			t.Errorf("%s: secret volume %s has no item at %s", where, volName, path.Base(file))
		}
	}
	if secret == "" {
		t.Fatalf("%s: nothing mounts a Secret at %s", where, path.Dir(file))
	}
	generated := false
	for _, g := range list(kustomization.m["secretGenerator"]) {
		generated = generated || str(dig(g, "name")) == secret
	}
	if !generated {
		t.Errorf("%s: the kustomization does not generate the Secret %s", kustomization.file, secret)
	}
}
