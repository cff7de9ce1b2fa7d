// Command decodo-emulator serves a local emulator of the Decodo Web Scraping
// API on loopback (see package decodo for what it emulates and how to
// inject failures).
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/fetchmesh/fetchmesh/testweb/decodo"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:7190", "listen address")
	user := flag.String("user", "fetchmesh", "username it accepts")
	pass := flag.String("pass", "emulator", "password it accepts")
	allow := flag.String("allow-origin", "http://127.0.0.1:8089", "comma-separated origins it may fetch from")
	flag.Parse()
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "decodo-emulator:", err)
		os.Exit(1)
	}
	e := decodo.New(decodo.Options{Username: *user, Password: *pass, AllowOrigins: strings.Split(*allow, ",")})
	srv := &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		<-sig
		srv.Close()
	}()
	log.Printf("decodo-emulator: serving http://%s (fetching from %s)", lis.Addr(), *allow)
	if err := srv.Serve(lis); err != nil && err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, "decodo-emulator:", err)
		os.Exit(1)
	}
}
