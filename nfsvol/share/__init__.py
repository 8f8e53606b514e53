"""What lives on an NFS share: volume directories, records, leases and trash.

Every host, the server and the containers write the share, so everything
read from it is hostile input: all access goes through nfsvol.share.sharefs,
which follows no link and opens no FIFO outside it.
"""
