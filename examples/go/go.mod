module memward.example/goworker

go 1.19
