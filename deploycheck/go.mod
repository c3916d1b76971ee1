module titanium/deploycheck

go 1.26.0
