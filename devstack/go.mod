module titanium/devstack

go 1.26.0
