"""spikedet's HTTP detection service (installed as ``spikedet.service``)."""
