package cluster

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"titanium/e2e/deployed"
)

// TestBackupCronJob runs the backup CronJob now, as an operator would
// (`kubectl create job --from=cronjob/...`), and checks what it wrote: a
// users.db.YYYY-mm-dd-HHMMSS that passes PRAGMA integrity_check and holds
// the users registered before it. The file is read where the node keeps the
// backup volume (a hostPath volume on this single node, found through the
// claim's PersistentVolume).
func TestBackupCronJob(t *testing.T) {
	before := deployed.NewUser(t, lb, "backup")
	job := fmt.Sprintf("backup-e2e-%d", time.Now().Unix())
	kubectl(t, "-n", ns, "create", "job", job, "--from=cronjob/local-user-service-backup")
	t.Cleanup(func() { _, _ = tryKubectl("-n", ns, "delete", "job", job, "--wait=false") })
	if out, err := tryKubectl("-n", ns, "wait", "--for=condition=Complete", "job/"+job, "--timeout=180s"); err != nil {
		logs, _ := tryKubectl("-n", ns, "logs", "job/"+job)
		t.Fatalf("job %s did not complete: %v %s\nlogs:\n%s", job, err, out, logs)
	}
	logs := kubectl(t, "-n", ns, "logs", "job/"+job)
	t.Logf("job %s logs:\n%s", job, logs)
	m := regexp.MustCompile(`"target":"/backup/(users\.db\.\d{4}-\d{2}-\d{2}-\d{6})".*"integrity_check":"ok"`).FindStringSubmatch(logs)
	if m == nil {
		t.Fatalf("the job's logs name no users.db.YYYY-mm-dd-HHMMSS written with integrity_check ok")
	}
	name := m[1]

	pv := strings.TrimSpace(kubectl(t, "-n", ns, "get", "pvc", "local-users-backup", "-o", "jsonpath={.spec.volumeName}"))
	dir := strings.TrimSpace(kubectl(t, "get", "pv", pv, "-o", "jsonpath={.spec.hostPath.path}"))
	if dir == "" {
		t.Fatalf("PersistentVolume %s of local-users-backup has no hostPath", pv)
	}
	path := filepath.Join(dir, name)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("backup named by the job: %v", err)
	}
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro&immutable=1")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var check string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Fatalf("PRAGMA integrity_check of %s: %q, %v; want ok", path, check, err)
	}
	var n int
	if err := db.QueryRow("SELECT count(*) FROM users WHERE username = ?", before.Username).Scan(&n); err != nil || n != 1 {
		t.Errorf("user %s, registered before the backup, in it: %d rows, %v; want 1", before.Username, n, err)
	}
	t.Logf("%s: integrity_check ok, holds %s", path, before.Username)
}
