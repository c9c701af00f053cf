// Package certs makes and loads the TLS material of a secured embedded
// stack: a throwaway certificate authority with a server and a client
// certificate for tests and `eos-runner broker|registry --tls-dir`, and
// tls.Configs from PEM files named as Kafka names them (ssl.ca.location,
// ssl.certificate.location, ssl.key.location).
package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Files are the PEM files Generate writes into a directory.
type Files struct {
	CA, CAKey         string // the authority: trust CA
	Server, ServerKey string // for the broker's or registry's listener
	Client, ClientKey string // a client certificate the authority signed (mutual TLS)
}

// FilesIn names the files of dir.
func FilesIn(dir string) Files {
	j := func(n string) string { return filepath.Join(dir, n) }
	return Files{CA: j("ca.pem"), CAKey: j("ca-key.pem"), Server: j("server.pem"), ServerKey: j("server-key.pem"),
		Client: j("client.pem"), ClientKey: j("client-key.pem")}
}

// Generate writes a new CA and a server and a client certificate it signed
// into dir, unless dir already holds them (then they are kept, so a
// restarted broker keeps the certificate its clients trust). The server
// certificate is valid for hosts (names or IP addresses) plus localhost,
// 127.0.0.1 and ::1, for ten years. Keys are ECDSA P-256, files mode 0600.
func Generate(dir string, hosts ...string) (Files, error) {
	f := FilesIn(dir)
	if _, err := os.Stat(f.ServerKey); err == nil {
		return f, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return f, fmt.Errorf("certs: %w", err)
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return f, err
	}
	now := time.Now().Add(-time.Hour)
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "eos-runner test CA " + now.Format(time.RFC3339)},
		NotBefore:             now,
		NotAfter:              now.AddDate(10, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return f, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return f, err
	}
	leaf := func(cn string, usage x509.ExtKeyUsage, names []string) ([]byte, *ecdsa.PrivateKey, error) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		tmpl := &x509.Certificate{
			SerialNumber: serial(),
			Subject:      pkix.Name{CommonName: cn},
			NotBefore:    now,
			NotAfter:     now.AddDate(10, 0, 0),
			KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		}
		for _, h := range names {
			if ip := net.ParseIP(h); ip != nil {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			} else {
				tmpl.DNSNames = append(tmpl.DNSNames, h)
			}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		return der, key, err
	}
	srvDER, srvKey, err := leaf("eos-runner server", x509.ExtKeyUsageServerAuth, append([]string{"localhost", "127.0.0.1", "::1"}, hosts...))
	if err != nil {
		return f, err
	}
	cliDER, cliKey, err := leaf("eos-runner client", x509.ExtKeyUsageClientAuth, nil)
	if err != nil {
		return f, err
	}
	for _, w := range []struct {
		path string
		der  []byte
		key  *ecdsa.PrivateKey
	}{{f.CA, caDER, nil}, {f.CAKey, nil, caKey}, {f.Server, srvDER, nil}, {f.ServerKey, nil, srvKey},
		{f.Client, cliDER, nil}, {f.ClientKey, nil, cliKey}} {
		var block *pem.Block
		if w.key != nil {
			b, err := x509.MarshalPKCS8PrivateKey(w.key)
			if err != nil {
				return f, err
			}
			block = &pem.Block{Type: "PRIVATE KEY", Bytes: b}
		} else {
			block = &pem.Block{Type: "CERTIFICATE", Bytes: w.der}
		}
		if err := os.WriteFile(w.path, pem.EncodeToMemory(block), 0o600); err != nil {
			return f, fmt.Errorf("certs: %w", err)
		}
	}
	return f, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return n
}

// ServerConfig is a listener's TLS config from a certificate and key file;
// with clientCA, clients must present a certificate that CA signed.
func ServerConfig(certFile, keyFile, clientCA string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls certificate %s, key %s: %w", certFile, keyFile, err)
	}
	c := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if clientCA != "" {
		pool, err := Pool(clientCA)
		if err != nil {
			return nil, err
		}
		c.ClientCAs, c.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return c, nil
}

// ClientConfig is a client's TLS config: trust caFile (empty: the system's
// roots), present certFile and keyFile when both are given, and verify the
// server's host name unless skipHostname (Kafka's
// ssl.endpoint.identification.algorithm=none; the chain is still verified).
func ClientConfig(caFile, certFile, keyFile string, skipHostname bool) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pool, err := Pool(caFile)
		if err != nil {
			return nil, err
		}
		c.RootCAs = pool
	}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("a client certificate needs both its certificate and its key file")
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate %s, key %s: %w", certFile, keyFile, err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	if skipHostname {
		// Verify the chain against the roots but not the name, as
		// librdkafka does with ssl.endpoint.identification.algorithm=none.
		roots := c.RootCAs
		c.InsecureSkipVerify = true
		c.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
			certs := make([]*x509.Certificate, len(raw))
			for i, r := range raw {
				cert, err := x509.ParseCertificate(r)
				if err != nil {
					return err
				}
				certs[i] = cert
			}
			if len(certs) == 0 {
				return errors.New("server presented no certificate")
			}
			inter := x509.NewCertPool()
			for _, ic := range certs[1:] {
				inter.AddCert(ic)
			}
			_, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
			return err
		}
	}
	return c, nil
}

// Pool reads a PEM file of CA certificates.
func Pool(caFile string) (*x509.CertPool, error) {
	b, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
	}
	return pool, nil
}
