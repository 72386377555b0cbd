package main

// Checks that the container image (Dockerfile), the docker compose setup
// (deploy/compose) and the Kubernetes manifests (deploy/k8s) are wired
// together and to `mamba serve`: environment variables name real flags,
// ports and probes agree, selectors select, Redis keeps an AOF, images are
// pinned and the image is static and non-root. Nothing here runs a
// container; it reads the files.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/mambamq/mamba/internal/cliflag"
)

const repoRoot = "../.."

// yamlDoc is one document of a YAML file.
type yamlDoc struct {
	file string // relative to the repository root
	idx  int    // position in its file, from 0
	m    map[string]any
}

func (d yamlDoc) String() string {
	if k := str(d.m["kind"]); k != "" {
		return fmt.Sprintf("%s (document %d, %s %s)", d.file, d.idx+1, k, str(dig(d.m, "metadata", "name")))
	}
	return fmt.Sprintf("%s (document %d)", d.file, d.idx+1)
}

// loadYAML parses every .yaml and .yml file under dir (relative to the
// repository root), every document of each.
func loadYAML(t *testing.T, dir string) []yamlDoc {
	t.Helper()
	var docs []yamlDoc
	files := 0
	err := filepath.WalkDir(filepath.Join(repoRoot, dir), func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() || (filepath.Ext(path) != ".yaml" && filepath.Ext(path) != ".yml") {
			return nil
		}
		files++
		rel, _ := filepath.Rel(repoRoot, path)
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for i := 0; ; i++ {
			var m map[string]any
			err := dec.Decode(&m)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Errorf("%s: document %d is not valid YAML: %v", rel, i+1, err)
				break
			}
			if m == nil {
				continue // an empty document
			}
			docs = append(docs, yamlDoc{file: rel, idx: i, m: m})
		}
		return nil
	})
	if err != nil {
		t.Fatalf("reading %s: %v", dir, err)
	}
	if files == 0 {
		t.Fatalf("no YAML files under %s", dir)
	}
	return docs
}

func str(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	default:
		return fmt.Sprint(v)
	}
}

// dig follows map keys from v and returns what it finds, or nil.
func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

func mapOf(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// strs turns a YAML list of scalars, or one string, into strings.
func strs(v any) []string {
	if s, ok := v.(string); ok {
		return strings.Fields(s)
	}
	var out []string
	for _, e := range list(v) {
		out = append(out, str(e))
	}
	return out
}

// serveEnvVars is the environment variable of every `mamba serve` flag.
func serveEnvVars() map[string]*pflag.Flag {
	vars := map[string]*pflag.Flag{}
	newServeCmd().Flags().VisitAll(func(f *pflag.Flag) {
		if f.Name != "help" {
			vars[cliflag.EnvName(f.Name)] = f
		}
	})
	return vars
}

// envOf is the environment of a compose service: a map, or a list of
// NAME=value.
func envOf(v any) map[string]string {
	env := map[string]string{}
	if m := mapOf(v); m != nil {
		for k, val := range m {
			env[k] = str(val)
		}
	}
	for _, e := range list(v) {
		k, val, _ := strings.Cut(str(e), "=")
		env[k] = val
	}
	return env
}

// portOf is the port of a listen address such as ":8080" or "0.0.0.0:8080".
func portOf(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "(unparsable " + strconv.Quote(addr) + ")"
	}
	return port
}

// dockerfile is the parsed Dockerfile: its instructions by stage.
type dockerfile struct {
	stages [][]dockerInstr
}

type dockerInstr struct {
	cmd  string // upper case
	args string
	line int
}

func parseDockerfile(t *testing.T) dockerfile {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	var df dockerfile
	var cur string
	start := 0
	for i, l := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(l)
		if cur == "" && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cur == "" {
			start = i + 1
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur += strings.TrimSuffix(trimmed, "\\") + " "
			continue
		}
		cur += trimmed
		cmd, args, _ := strings.Cut(cur, " ")
		in := dockerInstr{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args), line: start}
		cur = ""
		if in.cmd == "FROM" {
			df.stages = append(df.stages, nil)
		}
		if len(df.stages) == 0 {
			t.Fatalf("Dockerfile:%d: %s before the first FROM", in.line, in.cmd)
		}
		df.stages[len(df.stages)-1] = append(df.stages[len(df.stages)-1], in)
	}
	if len(df.stages) == 0 {
		t.Fatal("Dockerfile: no FROM")
	}
	return df
}

// final is the last stage, the image that runs.
func (df dockerfile) final() []dockerInstr { return df.stages[len(df.stages)-1] }

// stageNames are the names given with FROM ... AS name.
func (df dockerfile) stageNames() map[string]bool {
	names := map[string]bool{}
	for _, s := range df.stages {
		f := strings.Fields(s[0].args)
		if len(f) == 3 && strings.EqualFold(f[1], "as") {
			names[strings.ToLower(f[2])] = true
		}
	}
	return names
}

// imageName is an image reference without its tag or digest:
// "redis" for "redis:7.4.2-alpine", "ghcr.io/mambamq/mamba" for
// "ghcr.io/mambamq/mamba:0.1.0".
func imageName(image string) string {
	image, _, _ = strings.Cut(image, "@")
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		image = image[:i]
	}
	return image
}

// isImage says whether image is a reference to name (the last path
// element, so "minio/minio" matches "minio" but "minio/mc" does not).
func isImage(image, name string) bool {
	n := imageName(image)
	return n == name || strings.HasSuffix(n, "/"+name)
}

// checkListen reports a MAMBA_LISTEN that is not on port, or that listens
// on loopback only, where nothing outside the container reaches it.
func checkListen(t *testing.T, where, listen, port string) {
	t.Helper()
	if p := portOf(listen); p != port {
		t.Errorf("%s: MAMBA_LISTEN=%q listens on port %s, the image on %s", where, listen, p, port)
	}
	if h, _, _ := net.SplitHostPort(listen); h == "127.0.0.1" || h == "localhost" || h == "::1" {
		t.Errorf("%s: MAMBA_LISTEN=%q listens on loopback only: nothing outside the container reaches it", where, listen)
	}
}

// checkPinned reports an image reference without a tag or digest, or with
// the tag latest.
func checkPinned(t *testing.T, where, image string) {
	t.Helper()
	if image == "" {
		t.Errorf("%s: no image", where)
		return
	}
	if strings.Contains(image, "@sha256:") {
		return
	}
	name := image[strings.LastIndex(image, "/")+1:]
	_, tag, ok := strings.Cut(name, ":")
	switch {
	case !ok || tag == "":
		t.Errorf("%s: image %q is not pinned: give it a version tag or a digest", where, image)
	case tag == "latest":
		t.Errorf("%s: image %q uses :latest: pin a version tag or a digest", where, image)
	}
}

// apiPort is the port the image's API listens on: the Dockerfile's
// MAMBA_LISTEN, which EXPOSE must agree with.
func apiPort(t *testing.T) string {
	t.Helper()
	df := parseDockerfile(t)
	var listen, expose string
	for _, in := range df.final() {
		switch in.cmd {
		case "ENV":
			for _, f := range strings.Fields(in.args) {
				if v, ok := strings.CutPrefix(f, "MAMBA_LISTEN="); ok {
					listen = strings.Trim(v, `"'`)
				}
			}
			if v, ok := strings.CutPrefix(in.args, "MAMBA_LISTEN "); ok {
				listen = strings.Trim(strings.TrimSpace(v), `"'`)
			}
		case "EXPOSE":
			expose = strings.TrimSuffix(strings.Fields(in.args)[0], "/tcp")
		}
	}
	if listen == "" {
		t.Fatal("Dockerfile: the final stage sets no ENV MAMBA_LISTEN (the default 127.0.0.1:8080 is unreachable from outside a container)")
	}
	port := portOf(listen)
	checkListen(t, "Dockerfile", listen, port)
	if expose != port {
		t.Errorf("Dockerfile: EXPOSE %q but MAMBA_LISTEN=%s listens on port %s", expose, listen, port)
	}
	return port
}

func TestDeployDockerfile(t *testing.T) {
	df := parseDockerfile(t)
	apiPort(t)
	stages := df.stageNames()
	for _, s := range df.stages {
		for _, in := range s {
			var image string
			switch in.cmd {
			case "FROM":
				image = strings.Fields(in.args)[0]
			case "COPY":
				for _, f := range strings.Fields(in.args) {
					if v, ok := strings.CutPrefix(f, "--from="); ok {
						image = v
					}
				}
			}
			if image == "" || stages[strings.ToLower(image)] {
				continue
			}
			checkPinned(t, fmt.Sprintf("Dockerfile:%d", in.line), image)
		}
	}

	// The build: a static binary of ./cmd/mamba.
	static := false
	for _, s := range df.stages[:len(df.stages)-1] {
		cgoOff := false
		for _, in := range s {
			if in.cmd == "ENV" || in.cmd == "ARG" {
				if regexp.MustCompile(`\bCGO_ENABLED[= ]"?0\b`).MatchString(in.args) {
					cgoOff = true
				}
			}
			if in.cmd == "RUN" && strings.Contains(in.args, "go build") && strings.Contains(in.args, "./cmd/mamba") {
				if cgoOff || strings.Contains(in.args, "CGO_ENABLED=0") {
					static = true
				} else {
					t.Errorf("Dockerfile:%d: go build of ./cmd/mamba without CGO_ENABLED=0: the binary would need libc, which the final image lacks", in.line)
				}
			}
		}
	}
	if !static {
		t.Error("Dockerfile: no build stage runs `CGO_ENABLED=0 go build ... ./cmd/mamba`")
	}

	// The final stage: non-root, runs /mamba serve.
	final := df.final()
	base := strings.Fields(final[0].args)[0]
	user := ""
	var entrypoint, cmd string
	for _, in := range final {
		switch in.cmd {
		case "USER":
			user = in.args
		case "ENTRYPOINT":
			entrypoint = in.args
		case "CMD":
			cmd = in.args
		case "RUN":
			t.Errorf("Dockerfile:%d: RUN in the final stage: its base is meant to have no shell", in.line)
		}
	}
	switch {
	case user == "" && !strings.HasSuffix(base, ":nonroot"):
		t.Errorf("Dockerfile: the final stage (FROM %s) runs as root: add USER 65532:65532 or use a :nonroot base", base)
	case user != "":
		name, _, _ := strings.Cut(user, ":")
		if name == "root" || name == "0" {
			t.Errorf("Dockerfile: the final stage runs as USER %s; it must not be root", user)
		}
	}
	if entrypoint != `["/mamba"]` {
		t.Errorf(`Dockerfile: ENTRYPOINT is %q, want ["/mamba"]`, entrypoint)
	}
	if cmd != `["serve"]` {
		t.Errorf(`Dockerfile: CMD is %q, want ["serve"]`, cmd)
	}
	copied := false
	for _, in := range final {
		if in.cmd == "COPY" && strings.HasSuffix(in.args, " /mamba") {
			copied = true
		}
	}
	if !copied {
		t.Error("Dockerfile: the final stage copies no binary to /mamba")
	}
}

// checkEnvNames reports every MAMBA_* variable in env that no serve flag
// reads.
func checkEnvNames(t *testing.T, where string, names []string) {
	t.Helper()
	vars := serveEnvVars()
	for _, n := range names {
		if !strings.HasPrefix(n, "MAMBA_") {
			continue
		}
		if vars[n] == nil {
			known := make([]string, 0, len(vars))
			for k := range vars {
				known = append(known, k)
			}
			sort.Strings(known)
			t.Errorf("%s: %s is not the variable of any `mamba serve` flag, so it is silently ignored (known: %s)", where, n, strings.Join(known, ", "))
		}
	}
}

// checkRedisAOF reports a Redis command line without --appendonly yes.
func checkRedisAOF(t *testing.T, where string, args []string) {
	t.Helper()
	i := slices.Index(args, "--appendonly")
	if i < 0 || i+1 >= len(args) || args[i+1] != "yes" {
		t.Errorf("%s: Redis runs without `--appendonly yes` (%q): a restart would lose the index", where, args)
	}
	j := slices.Index(args, "--appendfsync")
	if j >= 0 && (j+1 >= len(args) || (args[j+1] != "always" && args[j+1] != "everysec")) {
		t.Errorf("%s: --appendfsync must be always or everysec, got %q", where, args)
	}
}

// shutdownTimeout parses a MAMBA_SHUTDOWN_TIMEOUT value, or the flag's
// default when it is empty.
func shutdownTimeout(t *testing.T, where, v string) time.Duration {
	t.Helper()
	if v == "" {
		v = serveEnvVars()["MAMBA_SHUTDOWN_TIMEOUT"].DefValue
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Errorf("%s: MAMBA_SHUTDOWN_TIMEOUT=%q: %v", where, v, err)
	}
	return d
}

func TestDeployCompose(t *testing.T) {
	port := apiPort(t)
	docs := loadYAML(t, "deploy/compose")
	var compose yamlDoc
	for _, d := range docs {
		if dig(d.m, "services") != nil {
			compose = d
		}
	}
	if compose.m == nil {
		t.Fatal("deploy/compose: no file has services:")
	}
	services := mapOf(compose.m["services"])
	names := make([]string, 0, len(services))
	for n := range services {
		names = append(names, n)
	}
	sort.Strings(names)

	var mambas []string
	nodes, tokenJobs := map[string]map[string]any{}, map[string]map[string]any{}
	nodeIDs := map[string]string{}
	redisFound, drRedis, drMinio, drReplication := false, false, false, false
	for _, name := range names {
		svc := mapOf(services[name])
		where := compose.file + ": service " + name
		image := str(svc["image"])
		if image != "" || svc["build"] == nil {
			checkPinned(t, where, image)
		}
		env := envOf(svc["environment"])
		envNames := make([]string, 0, len(env))
		for k := range env {
			envNames = append(envNames, k)
		}
		sort.Strings(envNames)
		checkEnvNames(t, where, envNames)
		inDR := slices.Contains(strs(svc["profiles"]), "dr")
		cmdline := append(strs(svc["entrypoint"]), strs(svc["command"])...)

		if isImage(image, "redis") {
			redisFound = redisFound || !inDR
			drRedis = drRedis || inDR
			checkRedisAOF(t, where, cmdline)
			if !slices.ContainsFunc(strs(svc["volumes"]), func(v string) bool { return strings.HasSuffix(v, ":/data") }) {
				t.Errorf("%s: Redis keeps its AOF in /data, which is on no volume", where)
			}
		}
		if isImage(image, "minio") && inDR {
			drMinio = true
		}
		if inDR && (strings.Contains(strings.Join(cmdline, " "), "mc replicate add") || strings.Contains(strings.Join(cmdline, " "), "minio-setup.sh")) {
			drReplication = true
		}

		isMamba := isImage(image, "mamba") || svc["build"] != nil
		if !isMamba {
			continue
		}
		if len(cmdline) >= 3 && cmdline[0] == "auth" && cmdline[2] == "generate" {
			tokenJobs[name] = svc
			continue
		}
		mambas = append(mambas, name)
		nodes[name] = svc
		checkListen(t, where, env["MAMBA_LISTEN"], port)
		for _, k := range []string{"MAMBA_BUCKET", "MAMBA_REDIS", "MAMBA_NODE_ID", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
			if env[k] == "" {
				t.Errorf("%s: %s is not set", where, k)
			}
		}
		if id := env["MAMBA_NODE_ID"]; id != "" {
			if other, ok := nodeIDs[id]; ok {
				t.Errorf("%s: MAMBA_NODE_ID=%s is also %s's: node ids must be unique", where, id, other)
			}
			nodeIDs[id] = name
		}
		test := strings.Join(strs(dig(svc, "healthcheck", "test")), " ")
		if !strings.Contains(test, ":"+port+"/readyz") {
			t.Errorf("%s: the healthcheck (%q) does not ask /readyz on port %s", where, test, port)
		}
		if g := str(svc["stop_grace_period"]); g != "" {
			d, err := time.ParseDuration(g)
			if st := shutdownTimeout(t, where, env["MAMBA_SHUTDOWN_TIMEOUT"]); err != nil || d <= st {
				t.Errorf("%s: stop_grace_period %s is not above the shutdown timeout %v: a draining node would be killed", where, g, st)
			}
		} else if shutdownTimeout(t, where, env["MAMBA_SHUTDOWN_TIMEOUT"]) >= 10*time.Second {
			t.Errorf("%s: no stop_grace_period: docker's 10s default kills a draining node before its shutdown timeout", where)
		}
	}
	if len(mambas) < 2 {
		t.Errorf("%s: want at least two mamba services (built from the Dockerfile), found %q", compose.file, mambas)
	}
	checkComposeAuth(t, compose.file, nodes, tokenJobs)
	if !redisFound {
		t.Errorf("%s: no redis service", compose.file)
	}
	if !drRedis || !drMinio || !drReplication {
		t.Errorf("%s: the dr profile wants a MinIO (%v), a Redis (%v) and a job that runs mc replicate add or minio-setup.sh (%v)", compose.file, drMinio, drRedis, drReplication)
	}

	// The load balancer: nginx with nginx.conf, upstream on every node's
	// port, healthy nodes first.
	var lb map[string]any
	var lbName string
	for _, name := range names {
		if svc := mapOf(services[name]); isImage(str(svc["image"]), "nginx") {
			lb, lbName = svc, name
		}
	}
	if lb == nil {
		t.Fatalf("%s: no nginx service in front of the nodes", compose.file)
	}
	where := compose.file + ": service " + lbName
	if !slices.ContainsFunc(strs(lb["volumes"]), func(v string) bool { return strings.HasPrefix(v, "./nginx.conf:") }) {
		t.Errorf("%s: does not mount ./nginx.conf", where)
	}
	for _, m := range mambas {
		if c := str(dig(lb, "depends_on", m, "condition")); c != "service_healthy" {
			t.Errorf("%s: depends_on %s with condition %q, want service_healthy", where, m, c)
		}
	}
	conf, err := os.ReadFile(filepath.Join(repoRoot, "deploy/compose/nginx.conf"))
	if err != nil {
		t.Fatal(err)
	}
	upstreams := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^\s*server\s+([A-Za-z0-9._-]+):(\d+)`).FindAllStringSubmatch(string(conf), -1) {
		upstreams[m[1]] = m[2]
	}
	if len(upstreams) == 0 {
		t.Error("deploy/compose/nginx.conf: no upstream `server host:port` lines")
	}
	for host, p := range upstreams {
		if !slices.Contains(mambas, host) {
			t.Errorf("deploy/compose/nginx.conf: upstream server %s is not a mamba service (%q)", host, mambas)
		}
		if p != port {
			t.Errorf("deploy/compose/nginx.conf: upstream server %s:%s, but the nodes listen on %s", host, p, port)
		}
	}
	for _, m := range mambas {
		if _, ok := upstreams[m]; !ok {
			t.Errorf("deploy/compose/nginx.conf: mamba service %s is not in the upstream", m)
		}
	}
	if m := regexp.MustCompile(`\bproxy_pass\s+http://([A-Za-z0-9_-]+)`).FindStringSubmatch(string(conf)); m == nil || !regexp.MustCompile(`\bupstream\s+`+regexp.QuoteMeta(m[1])+`\s*\{`).Match(conf) {
		t.Error("deploy/compose/nginx.conf: proxy_pass does not go to the upstream block")
	}
	listen := regexp.MustCompile(`(?m)^\s*listen\s+(\d+)`).FindStringSubmatch(string(conf))
	if listen == nil {
		t.Error("deploy/compose/nginx.conf: no listen")
	} else {
		published := false
		for _, p := range strs(lb["ports"]) {
			parts := strings.Split(p, ":")
			if parts[len(parts)-1] == listen[1] {
				published = true
			}
		}
		if !published {
			t.Errorf("%s: ports %q do not publish nginx's listen port %s", where, strs(lb["ports"]), listen[1])
		}
	}
	maxWait, _ := time.ParseDuration(serveEnvVars()["MAMBA_MAX_WAIT"].DefValue)
	if m := regexp.MustCompile(`\bproxy_read_timeout\s+(\d+)(s|m)?;`).FindStringSubmatch(string(conf)); m == nil {
		t.Errorf("deploy/compose/nginx.conf: no proxy_read_timeout: nginx's 60s default is too close to long-polls of --max-wait %v plus a flush", maxWait)
	} else {
		n, _ := strconv.Atoi(m[1])
		d := time.Duration(n) * time.Second
		if m[2] == "m" {
			d = time.Duration(n) * time.Minute
		}
		if d <= 2*maxWait {
			t.Errorf("deploy/compose/nginx.conf: proxy_read_timeout %v cuts long-polls: keep it well above --max-wait %v", d, maxWait)
		}
	}
}

// k8sWorkload is a pod template found in the manifests.
type k8sWorkload struct {
	doc      yamlDoc
	selector map[string]any
	pod      map[string]any // the template's spec
	labels   map[string]any
}

// labelsMatch says whether every key of sel has the same value in labels.
func labelsMatch(sel, labels map[string]any) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if str(labels[k]) != str(v) {
			return false
		}
	}
	return true
}

func TestDeployKubernetes(t *testing.T) {
	port := apiPort(t)
	docs := loadYAML(t, "deploy/k8s")
	vars := serveEnvVars()

	var kustomization yamlDoc
	configMaps := map[string]map[string]any{}
	var workloads []k8sWorkload
	var services, pdbs, hpas []yamlDoc
	var namespace string
	for _, d := range docs {
		kind := str(d.m["kind"])
		switch kind {
		case "Kustomization":
			kustomization = d
			continue
		case "":
			t.Errorf("%s: no kind", d)
			continue
		case "Namespace":
			namespace = str(dig(d.m, "metadata", "name"))
		case "ConfigMap":
			configMaps[str(dig(d.m, "metadata", "name"))] = mapOf(d.m["data"])
			var keys []string
			for k := range mapOf(d.m["data"]) {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			checkEnvNames(t, d.String(), keys)
		case "Service":
			services = append(services, d)
		case "PodDisruptionBudget":
			pdbs = append(pdbs, d)
		case "HorizontalPodAutoscaler":
			hpas = append(hpas, d)
		case "Deployment", "StatefulSet", "DaemonSet", "Job":
			workloads = append(workloads, k8sWorkload{
				doc:      d,
				selector: mapOf(dig(d.m, "spec", "selector", "matchLabels")),
				pod:      mapOf(dig(d.m, "spec", "template", "spec")),
				labels:   mapOf(dig(d.m, "spec", "template", "metadata", "labels")),
			})
		}
		if str(dig(d.m, "metadata", "name")) == "" {
			t.Errorf("%s: no metadata.name", d)
		}
	}
	if namespace == "" {
		t.Error("deploy/k8s: no Namespace")
	}
	for _, d := range docs {
		if k := str(d.m["kind"]); k != "Namespace" && k != "Kustomization" {
			if ns := str(dig(d.m, "metadata", "namespace")); ns != namespace {
				t.Errorf("%s: namespace %q, want %q", d, ns, namespace)
			}
		}
	}

	// The kustomization lists every manifest, and only those.
	if kustomization.m == nil {
		t.Error("deploy/k8s: no kustomization.yaml")
	} else {
		listed := strs(kustomization.m["resources"])
		files := map[string]bool{}
		for _, d := range docs {
			if d.file != kustomization.file {
				files[filepath.Base(d.file)] = true
			}
		}
		for f := range files {
			if !slices.Contains(listed, f) {
				t.Errorf("%s: resources do not list %s, so kubectl apply -k skips it", kustomization.file, f)
			}
		}
		for _, f := range listed {
			if !files[f] {
				t.Errorf("%s: resource %s is not a manifest in deploy/k8s", kustomization.file, f)
			}
		}
		if len(listed) > 0 && listed[0] != "namespace.yaml" {
			t.Errorf("%s: resources should start with namespace.yaml, not %s", kustomization.file, listed[0])
		}
		for _, img := range list(kustomization.m["images"]) {
			if tag := str(dig(img, "newTag")); tag == "" || tag == "latest" {
				t.Errorf("%s: images: %s gets tag %q; pin a version", kustomization.file, str(dig(img, "name")), tag)
			}
		}
	}

	var mamba *k8sWorkload
	redisFound := false
	for i := range workloads {
		w := &workloads[i]
		where := w.doc.String()
		kind := str(w.doc.m["kind"])
		if kind != "Job" {
			if !labelsMatch(w.selector, w.labels) {
				t.Errorf("%s: selector.matchLabels %v does not match the pod labels %v", where, w.selector, w.labels)
			}
		}
		containers := append(list(w.pod["initContainers"]), list(w.pod["containers"])...)
		if len(list(w.pod["containers"])) == 0 {
			t.Errorf("%s: no containers", where)
		}
		for _, c := range containers {
			cwhere := fmt.Sprintf("%s container %s", where, str(dig(c, "name")))
			image := str(dig(c, "image"))
			checkPinned(t, cwhere, image)
			var names []string
			for _, e := range list(dig(c, "env")) {
				names = append(names, str(dig(e, "name")))
			}
			checkEnvNames(t, cwhere, names)
			for _, ef := range list(dig(c, "envFrom")) {
				if cm := str(dig(ef, "configMapRef", "name")); cm != "" {
					if _, ok := configMaps[cm]; !ok {
						t.Errorf("%s: envFrom ConfigMap %s, which deploy/k8s does not define", cwhere, cm)
					}
				}
			}
			if isImage(image, "redis") {
				redisFound = true
				checkRedisAOF(t, cwhere, append(strs(dig(c, "command")), strs(dig(c, "args"))...))
				if len(list(dig(w.doc.m, "spec", "volumeClaimTemplates"))) == 0 || kind != "StatefulSet" {
					t.Errorf("%s: Redis must be a StatefulSet with a volumeClaimTemplate for its AOF", where)
				}
				mounted := false
				for _, vm := range list(dig(c, "volumeMounts")) {
					mounted = mounted || str(dig(vm, "mountPath")) == "/data"
				}
				if !mounted {
					t.Errorf("%s: nothing is mounted on /data, where Redis keeps its AOF", cwhere)
				}
			}
			if isImage(image, "mamba") {
				if mamba != nil {
					t.Errorf("%s: a second workload runs mamba (also %s); this test expects one Deployment", where, mamba.doc)
				}
				mamba = w
			}
		}
	}
	if !redisFound {
		t.Error("deploy/k8s: no Redis")
	}
	if mamba == nil {
		t.Fatal("deploy/k8s: no workload runs the mamba image")
	}
	where := mamba.doc.String()
	if k := str(mamba.doc.m["kind"]); k != "Deployment" {
		t.Errorf("%s: the ingest nodes should be a Deployment, not a %s", where, k)
	}
	pod := mamba.pod
	c := mapOf(list(pod["containers"])[0])
	for _, cc := range list(pod["containers"]) {
		if strings.Contains(str(dig(cc, "image")), "mamba") {
			c = mapOf(cc)
		}
	}

	// Its environment: the ConfigMap plus env.
	env := map[string]string{}
	for _, ef := range list(c["envFrom"]) {
		for k, v := range configMaps[str(dig(ef, "configMapRef", "name"))] {
			env[k] = str(v)
		}
	}
	nodeIDFromPod := false
	for _, e := range list(c["env"]) {
		n := str(dig(e, "name"))
		env[n] = str(dig(e, "value"))
		if n == "MAMBA_NODE_ID" {
			nodeIDFromPod = str(dig(e, "valueFrom", "fieldRef", "fieldPath")) == "metadata.name"
		}
	}
	if !nodeIDFromPod {
		t.Errorf("%s: MAMBA_NODE_ID must come from the pod's name (valueFrom.fieldRef.fieldPath: metadata.name), so that every node's id is unique", where)
	}
	for _, k := range []string{"MAMBA_LISTEN", "MAMBA_BUCKET", "MAMBA_REDIS"} {
		if _, ok := env[k]; !ok {
			t.Errorf("%s: %s is not set (by env or an envFrom ConfigMap)", where, k)
		}
		if vars[k] == nil {
			t.Errorf("%s is no longer a serve flag", k)
		}
	}
	checkListen(t, where, env["MAMBA_LISTEN"], port)
	checkKubernetesAuth(t, where, env, c, pod, kustomization)

	// Ports and probes.
	portNames := map[string]string{}
	containerPort := ""
	for _, p := range list(c["ports"]) {
		cp := str(dig(p, "containerPort"))
		portNames[str(dig(p, "name"))] = cp
		if cp == port {
			containerPort = cp
		}
	}
	if containerPort == "" {
		t.Errorf("%s: no containerPort %s (ports %v)", where, port, list(c["ports"]))
	}
	resolve := func(v any) string {
		if n, ok := portNames[str(v)]; ok && str(v) != "" {
			return n
		}
		return str(v)
	}
	for probe, path := range map[string]string{"readinessProbe": "/readyz", "livenessProbe": "/healthz"} {
		hg := dig(c, probe, "httpGet")
		if hg == nil {
			t.Errorf("%s: no %s.httpGet", where, probe)
			continue
		}
		if p := str(dig(hg, "path")); p != path {
			t.Errorf("%s: %s asks %q, want %s", where, probe, p, path)
		}
		if p := resolve(dig(hg, "port")); p != port {
			t.Errorf("%s: %s on port %s, the node listens on %s", where, probe, p, port)
		}
	}

	// Draining.
	st := shutdownTimeout(t, where, env["MAMBA_SHUTDOWN_TIMEOUT"])
	grace := 30 // Kubernetes' default
	if v, ok := pod["terminationGracePeriodSeconds"]; ok {
		grace, _ = strconv.Atoi(str(v))
	}
	if time.Duration(grace)*time.Second <= st {
		t.Errorf("%s: terminationGracePeriodSeconds %d is not above MAMBA_SHUTDOWN_TIMEOUT %v: a draining node would be killed", where, grace, st)
	}

	// Non-root, read-only root file system, resources.
	runAsNonRoot := dig(pod, "securityContext", "runAsNonRoot") == true || dig(c, "securityContext", "runAsNonRoot") == true
	if !runAsNonRoot {
		t.Errorf("%s: runAsNonRoot is not true", where)
	}
	for _, sc := range []any{dig(pod, "securityContext"), dig(c, "securityContext")} {
		if u := dig(sc, "runAsUser"); u != nil && str(u) == "0" {
			t.Errorf("%s: runAsUser 0", where)
		}
	}
	if dig(c, "securityContext", "readOnlyRootFilesystem") != true {
		t.Errorf("%s: securityContext.readOnlyRootFilesystem is not true", where)
	}
	if dig(c, "securityContext", "allowPrivilegeEscalation") != false {
		t.Errorf("%s: securityContext.allowPrivilegeEscalation is not false", where)
	}
	for _, r := range []string{"requests", "limits"} {
		if dig(c, "resources", r, "memory") == nil {
			t.Errorf("%s: no resources.%s.memory", where, r)
		}
	}
	if dig(c, "resources", "requests", "cpu") == nil {
		t.Errorf("%s: no resources.requests.cpu, which the CPU autoscaler needs", where)
	}

	// The Service, PDB and HPA point at it.
	mambaName := str(dig(mamba.doc.m, "metadata", "name"))
	servedBy := 0
	for _, s := range services {
		sel := mapOf(dig(s.m, "spec", "selector"))
		var target *k8sWorkload
		for i := range workloads {
			if labelsMatch(sel, workloads[i].labels) {
				target = &workloads[i]
			}
		}
		if target == nil {
			t.Errorf("%s: selector %v matches no pod template", s, sel)
			continue
		}
		if target != mamba {
			continue
		}
		servedBy++
		for _, p := range list(dig(s.m, "spec", "ports")) {
			tp := dig(p, "targetPort")
			if tp == nil {
				tp = dig(p, "port")
			}
			if resolve(tp) != port {
				t.Errorf("%s: targetPort %v, the node listens on %s", s, tp, port)
			}
		}
	}
	if servedBy == 0 {
		t.Errorf("%s: no Service selects its pods (labels %v)", where, mamba.labels)
	}
	if len(pdbs) == 0 {
		t.Errorf("%s: no PodDisruptionBudget", where)
	}
	for _, p := range pdbs {
		sel := mapOf(dig(p.m, "spec", "selector", "matchLabels"))
		if !labelsMatch(sel, mamba.labels) {
			t.Errorf("%s: selector %v does not match the pods of %s (labels %v)", p, sel, where, mamba.labels)
		}
	}
	if len(hpas) == 0 {
		t.Errorf("%s: no HorizontalPodAutoscaler", where)
	}
	for _, h := range hpas {
		if v := str(h.m["apiVersion"]); v != "autoscaling/v2" {
			t.Errorf("%s: apiVersion %s, want autoscaling/v2", h, v)
		}
		ref := dig(h.m, "spec", "scaleTargetRef")
		if str(dig(ref, "kind")) != str(mamba.doc.m["kind"]) || str(dig(ref, "name")) != mambaName {
			t.Errorf("%s: scaleTargetRef is %s %s, want %s %s", h, str(dig(ref, "kind")), str(dig(ref, "name")), str(mamba.doc.m["kind"]), mambaName)
		}
		cpu := false
		for _, m := range list(dig(h.m, "spec", "metrics")) {
			cpu = cpu || str(dig(m, "resource", "name")) == "cpu"
		}
		if !cpu {
			t.Errorf("%s: no CPU metric", h)
		}
		if mn, _ := strconv.Atoi(str(dig(h.m, "spec", "minReplicas"))); mn < 2 {
			t.Errorf("%s: minReplicas %d; keep at least 2 so that one node can drain while another serves", h, mn)
		}
	}
}
