"""GET /metrics: Prometheus exposition, merged across processes when PROMETHEUS_MULTIPROC_DIR is set."""

from django_prometheus.exports import ExportToDjangoView


def export(request):
    return ExportToDjangoView(request)
