#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# router.sh: join a client and a server that sit on two different IPv4
# networks through a router, then ping the server from the client.
# The three machines are network namespaces that already exist, wired by two
# veth pairs (client — router — server) whose ends have no address and are down.
#
# Everything comes from the environment (new names, networks and addresses on
# every run):
#   CLIENT_NS ROUTER_NS SERVER_NS   the three network namespaces (ip netns)
#   CLIENT_IF                       the client's interface, wired to ROUTER_IF_C
#   ROUTER_IF_C ROUTER_IF_S         the router's interfaces toward the client and the server
#   SERVER_IF                       the server's interface, wired to ROUTER_IF_S
#   CLIENT_ADDR ROUTER_ADDR_C       the client's network: addresses with prefix length (10.37.4.66/27)
#   ROUTER_ADDR_S SERVER_ADDR       the server's network: addresses with prefix length
#   CLIENT_NET SERVER_NET           the two networks themselves (10.37.4.64/27)
# Change nothing but the three namespaces: never the host's interfaces, routes or sysctls.
# Run: sudo env CLIENT_NS=… … sh router.sh
set -eu

for v in CLIENT_NS ROUTER_NS SERVER_NS CLIENT_IF ROUTER_IF_C ROUTER_IF_S SERVER_IF \
	CLIENT_ADDR ROUTER_ADDR_C ROUTER_ADDR_S SERVER_ADDR CLIENT_NET SERVER_NET; do
	eval "val=\${$v:-}"
	if [ -z "$val" ]; then
		echo "router.sh: $v is not set" >&2
		exit 2
	fi
done
# The addresses without their prefix length.
router_c=${ROUTER_ADDR_C%/*}
router_s=${ROUTER_ADDR_S%/*}
server=${SERVER_ADDR%/*}

# 1. Each machine gets its address on its interface, and the interfaces come up.
# LAB:BEGIN give each of the four interfaces its address (with its prefix length: the kernel derives the connected route from it) and bring it up, inside the namespace it lives in (ip-address(8), ip-link(8); ip -n runs in a namespace)
for spec in "$CLIENT_NS $CLIENT_IF $CLIENT_ADDR" "$ROUTER_NS $ROUTER_IF_C $ROUTER_ADDR_C" \
	"$ROUTER_NS $ROUTER_IF_S $ROUTER_ADDR_S" "$SERVER_NS $SERVER_IF $SERVER_ADDR"; do
	set -- $spec
	ip -n "$1" address add "$3" dev "$2"
	ip -n "$1" link set dev "$2" up
done
# LAB:STARTER
# :
# LAB:END

# 2. Routes: each end host reaches the other network through the router's address on its own network.
# LAB:BEGIN the client has a route to the server's network and the server one to the client's, each through the router's address on its own wire as the gateway (ip-route(8): a route with a next hop); the router needs none: both networks are directly connected to it
ip -n "$CLIENT_NS" route add "$SERVER_NET" via "$router_c" dev "$CLIENT_IF"
ip -n "$SERVER_NS" route add "$CLIENT_NET" via "$router_s" dev "$SERVER_IF"
# LAB:STARTER
# :
# LAB:END

# 3. The router forwards packets that are not its own — in its namespace only.
# LAB:BEGIN turn IPv4 forwarding on inside the router's namespace, and only there (the per-namespace sysctl net.ipv4.ip_forward: Documentation/networking/ip-sysctl.rst, ip-netns(8) to run sysctl(8) inside it)
ip netns exec "$ROUTER_NS" sysctl -q -w net.ipv4.ip_forward=1
# LAB:STARTER
# :
# LAB:END

# 4. The client pings the server: its first echo request waits for ARP, twice (client → router, router → server).
ip netns exec "$CLIENT_NS" ping -n -c 3 -i 0.2 -W 2 "$server"
