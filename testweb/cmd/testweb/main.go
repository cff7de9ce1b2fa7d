// Command testweb serves the fetchmesh test web on a loopback port.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/fetchmesh/fetchmesh/testweb"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8089", "listen address")
	seed := flag.Uint64("seed", 1, "seed the pages are generated from")
	flag.Parse()
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testweb:", err)
		os.Exit(1)
	}
	srv := &http.Server{Handler: testweb.New(*seed), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		<-sig
		srv.Close()
	}()
	log.Printf("testweb: serving http://%s (seed %d)", lis.Addr(), *seed)
	if err := srv.Serve(lis); err != nil && err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, "testweb:", err)
		os.Exit(1)
	}
}
