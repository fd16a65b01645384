module github.com/onecast/onecast

go 1.26.8

require (
	github.com/cloudflare/circl v1.6.5
	github.com/stretchr/testify v1.12.1
)

require (
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/crypto v0.54.0 // indirect
	golang.org/x/sys v0.47.0 // indirect
)
