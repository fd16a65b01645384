package realsys

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Missing is one program an experiment needs that this host lacks, and the
// Debian package that provides it.
type Missing struct {
	// What names it ("etcd", "dumpcap", "ZooKeeper's server jar").
	What string
	// Package is the Debian package to install.
	Package string
	// Looked says where it was looked for.
	Looked string
}

func (m Missing) String() string { return fmt.Sprintf("%s (looked in %s)", m.What, m.Looked) }

// InstallCommand is the command that installs what missing lists:
// "apt-get install etcd-server tshark". This package never runs it.
func InstallCommand(missing []Missing) string {
	var pkgs []string
	for _, m := range missing {
		if !slices.Contains(pkgs, m.Package) {
			pkgs = append(pkgs, m.Package)
		}
	}
	return "apt-get install " + strings.Join(pkgs, " ")
}

// Layout is where a host keeps the programs: PATH, the environment, and the
// root of the file system (a test points it at a fake tree).
type Layout struct {
	// Path is the PATH to search; Getenv reads JAVA_HOME and
	// ZOOKEEPER_HOME; Root prefixes every fixed path ("" is /).
	Path   string
	Getenv func(string) string
	Root   string
}

// HostLayout is this process's PATH and environment on /.
func HostLayout() Layout { return Layout{Path: os.Getenv("PATH"), Getenv: os.Getenv} }

func (l Layout) file(p string) string { return filepath.Join(l.Root, p) }

// lookPath finds an executable named name on l.Path.
func (l Layout) lookPath(name string) (string, bool) {
	for _, dir := range filepath.SplitList(l.Path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, true
		}
	}
	return "", false
}

func (l Layout) getenv(k string) string {
	if l.Getenv == nil {
		return ""
	}
	return l.Getenv(k)
}

func executable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// ZooKeeperInstall is a ZooKeeper server found on the host.
type ZooKeeperInstall struct {
	// Java is the java binary; Classpath the server's classpath.
	Java      string
	Classpath string
}

// errNotFound marks a program not found where a Layout looks.
var errNotFound = errors.New("not found")

// FindJava finds a java binary the way Debian's zookeeper scripts do:
// $JAVA_HOME/bin/java, the JAVA= line of /etc/zookeeper/conf/environment,
// java on PATH, then /usr/lib/jvm/default-java and any other JVM there.
func (l Layout) FindJava() (string, error) {
	var cands []string
	if h := l.getenv("JAVA_HOME"); h != "" {
		cands = append(cands, filepath.Join(h, "bin", "java"))
	}
	if j := envFileValue(l.file("/etc/zookeeper/conf/environment"), "JAVA"); j != "" {
		cands = append(cands, l.file(j))
	}
	if p, ok := l.lookPath("java"); ok {
		cands = append(cands, p)
	}
	cands = append(cands, l.file("/usr/lib/jvm/default-java/bin/java"))
	jvms, _ := filepath.Glob(l.file("/usr/lib/jvm/*/bin/java"))
	cands = append(cands, jvms...)
	for _, c := range cands {
		if executable(c) {
			return c, nil
		}
	}
	return "", fmt.Errorf("java %w ($JAVA_HOME, /etc/zookeeper/conf/environment, PATH, /usr/lib/jvm)", errNotFound)
}

// FindZooKeeper finds ZooKeeper's server the way Debian's package installs
// it (/usr/share/java/zookeeper.jar from libzookeeper-java, whose manifest
// names its dependencies; /etc/zookeeper/conf; the scripts in
// /usr/share/zookeeper/bin), or an upstream tarball under $ZOOKEEPER_HOME
// or /opt/zookeeper (lib/*.jar), and a java to run it with.
func (l Layout) FindZooKeeper() (ZooKeeperInstall, []Missing) {
	var missing []Missing
	var cp []string
	if conf := l.file("/etc/zookeeper/conf"); dirExists(conf) {
		cp = append(cp, conf)
	}
	looked := []string{"/usr/share/java/zookeeper.jar"}
	switch jar := l.file("/usr/share/java/zookeeper.jar"); {
	case fileExists(jar):
		cp = append(cp, jar)
	default:
		homes := []string{l.getenv("ZOOKEEPER_HOME"), l.file("/opt/zookeeper"), l.file("/usr/share/zookeeper")}
		found := false
		for _, h := range homes {
			if h == "" {
				continue
			}
			looked = append(looked, filepath.Join(h, "lib"))
			jars, _ := filepath.Glob(filepath.Join(h, "lib", "*.jar"))
			if len(jars) > 0 && slices.ContainsFunc(jars, func(j string) bool { return strings.Contains(filepath.Base(j), "zookeeper") }) {
				if conf := filepath.Join(h, "conf"); dirExists(conf) {
					cp = append(cp, conf)
				}
				cp = append(cp, jars...)
				found = true
				break
			}
		}
		if !found {
			missing = append(missing, Missing{What: "ZooKeeper's server jar", Package: "zookeeper", Looked: strings.Join(looked, ", ")})
		}
	}
	java, err := l.FindJava()
	if err != nil {
		missing = append(missing, Missing{What: "java", Package: "zookeeper", Looked: "$JAVA_HOME, /etc/zookeeper/conf/environment, PATH, /usr/lib/jvm"})
	}
	return ZooKeeperInstall{Java: java, Classpath: strings.Join(cp, ":")}, missing
}

// Check lists what system ("etcd" or "zookeeper") needs that this layout
// lacks: its servers and dumpcap (tshark), which captures their traffic.
// Nothing is installed: the caller shows InstallCommand and skips the system.
func (l Layout) Check(system string) ([]Missing, error) {
	var missing []Missing
	switch system {
	case "etcd":
		if _, ok := l.lookPath("etcd"); !ok {
			missing = append(missing, Missing{What: "etcd", Package: "etcd-server", Looked: "PATH"})
		}
	case "zookeeper":
		_, m := l.FindZooKeeper()
		missing = append(missing, m...)
	default:
		return nil, fmt.Errorf("unknown system %q (have %v)", system, Systems)
	}
	if _, ok := l.lookPath("dumpcap"); !ok {
		missing = append(missing, Missing{What: "dumpcap", Package: "tshark", Looked: "PATH"})
	}
	return missing, nil
}

// envFileValue reads KEY=value (optionally quoted) from a shell environment
// file such as Debian's /etc/zookeeper/conf/environment.
func envFileValue(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if v, ok := strings.CutPrefix(line, key+"="); ok {
			return strings.Trim(v, `"'`)
		}
	}
	return ""
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

func dirExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}
