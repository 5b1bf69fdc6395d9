// A key-value service in Go, served the way a Consul server serves RPC:
// each connection starts with the byte 0x04, then carries a yamux session
// whose every stream speaks net/rpc with MessagePack (hashicorp's
// net-rpc-msgpackrpc). The Swift example `call-go-server` calls it.
//
// Built against Debian's packaged hashicorp sources (GOPATH mode); see
// Examples/run-go-example.sh.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/rpc"
	"os"
	"sync"

	msgpackrpc "github.com/hashicorp/net-rpc-msgpackrpc"
	"github.com/hashicorp/yamux"
)

// The argument and reply types; their field names are the MessagePack
// keys the Swift side writes.
type PutArgs struct {
	Key   string
	Value []byte
}

type GetArgs struct {
	Key string
}

type GetReply struct {
	Value []byte
	Found bool
}

type Empty struct{}

type KV struct {
	mu     sync.Mutex
	values map[string][]byte
}

func (kv *KV) Put(args PutArgs, reply *Empty) error {
	if args.Key == "" {
		return errors.New("empty key")
	}
	kv.mu.Lock()
	defer kv.mu.Unlock()
	kv.values[args.Key] = args.Value
	return nil
}

func (kv *KV) Get(args GetArgs, reply *GetReply) error {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	reply.Value, reply.Found = kv.values[args.Key]
	return nil
}

const preambleConsul = 0x04

func main() {
	address := flag.String("listen", "127.0.0.1:8300", "address to listen on")
	flag.Parse()

	server := rpc.NewServer()
	if err := server.Register(&KV{values: map[string][]byte{}}); err != nil {
		fmt.Fprintln(os.Stderr, "register:", err)
		os.Exit(2)
	}
	listener, err := net.Listen("tcp", *address)
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		os.Exit(2)
	}
	fmt.Printf("listening on %s\n", listener.Addr())
	for {
		conn, err := listener.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, "accept:", err)
			os.Exit(2)
		}
		go serveConnection(server, conn)
	}
}

// serveConnection reads the preamble, then serves net/rpc on every yamux
// stream the client opens.
func serveConnection(server *rpc.Server, conn net.Conn) {
	var first [1]byte
	if _, err := io.ReadFull(conn, first[:]); err != nil || first[0] != preambleConsul {
		conn.Close()
		return
	}
	session, err := yamux.Server(conn, yamux.DefaultConfig())
	if err != nil {
		conn.Close()
		return
	}
	for {
		stream, err := session.Accept()
		if err != nil {
			return
		}
		go server.ServeCodec(msgpackrpc.NewServerCodec(stream))
	}
}
