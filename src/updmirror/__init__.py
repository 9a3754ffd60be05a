"""updmirror: an update mirror server for ESET-style antivirus update repositories."""

__version__ = "0.1.0"
