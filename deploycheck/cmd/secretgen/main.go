// Command secretgen makes the secrets of a docker-compose deployment once:
// for every name given, it writes 32 random bytes, hex-encoded, to DIR/name,
// unless that file already exists. It runs as a one-shot service before the
// others (docker-compose.yml), so each deployment gets its own JWT key and
// Redis password, kept in a named volume that never leaves the host, and the
// keys survive restarts (tokens stay valid) until `docker-compose down -v`.
// The services read them through JWT_SECRET_FILE and REDIS_PASSWORD_FILE.
package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

func main() {
	dir := flag.String("dir", "/secrets", "directory to write the secrets into")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: secretgen [-dir DIR] NAME...")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	for _, name := range flag.Args() {
		made, err := ensure(*dir, name)
		if err != nil {
			fmt.Fprintln(os.Stderr, "secretgen:", err)
			os.Exit(1)
		}
		state := "kept"
		if made {
			state = "made"
		}
		fmt.Printf("secretgen: %s %s\n", filepath.Join(*dir, name), state)
	}
}

// ensure writes a new secret to dir/name unless the file exists. The file is
// created exclusively, so two runs never replace each other's secret.
func ensure(dir, name string) (made bool, err error) {
	if name == "" || name != filepath.Base(name) || name[0] == '.' {
		return false, fmt.Errorf("%q: want a plain file name", name)
	}
	path := filepath.Join(dir, name)
	if _, err := os.Stat(path); err == nil {
		return false, nil
	}
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return false, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o400)
	if errors.Is(err, fs.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	_, err = f.WriteString(hex.EncodeToString(buf) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return false, err
	}
	return true, nil
}
