# free_port: prints a TCP port nothing listens on at 127.0.0.1, below the kernel's ephemeral
# range, so no outgoing connection (other tests run beside this one) can take it before the
# caller binds it. Source it; bash only.
free_port() {
    local low=32768 p
    read -r low _ 2>/dev/null </proc/sys/net/ipv4/ip_local_port_range || low=32768
    [ "$low" -gt 11024 ] || low=60000 # an unusual range: any port above 10000
    for _ in $(seq 1 100); do
        p=$((10000 + RANDOM % (low - 10000)))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    echo "no free port found" >&2
    return 1
}
