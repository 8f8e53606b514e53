"""Operator commands: check, ls and doctor, run by hand on a Docker host.

They read the shares and this host's state directly, so they work while
dockerd or the plugin is down. Every probe of a server runs under a timeout.
"""
