module github.com/fetchmesh/fetchmesh/testweb

go 1.26.0
