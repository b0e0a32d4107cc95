module trainjob-gc/bench

go 1.22
