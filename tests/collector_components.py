"""The components of the pinned OpenTelemetry Collector Contrib distribution, 0.136.0.

Source: open-telemetry/opentelemetry-collector-releases, distributions/otelcol-contrib/manifest.yaml
at commit 008cde8ca78cc0286ee3f0de92fa95e1641a445a, where every component module is at v0.136.0
(the file's own dist.version field still read 0.135.0 at that commit). Listed here are the last
path segments of the Go modules, per kind, in the manifest's order.

A component *type* (what a config names, the part before ``/``) is usually its module name without
the kind suffix (``otlphttpexporter`` -> ``otlphttp``); the others are in TYPE_EXCEPTIONS, each
checked against the component's ``metadata.yaml`` (``type:``). Underscores are not dropped by
rule: ``otlp_http`` (a name of 0.144 and later) must NOT match ``otlphttpexporter`` here.
"""

from __future__ import annotations


def _names(text: str) -> list[str]:
    return text.split()


VERSION = "0.136.0"
SOURCE = (
    "open-telemetry/opentelemetry-collector-releases distributions/otelcol-contrib/manifest.yaml "
    "@ 008cde8ca78cc0286ee3f0de92fa95e1641a445a (modules v0.136.0)"
)

RECEIVERS = _names(
    """
nopreceiver otlpreceiver activedirectorydsreceiver aerospikereceiver apachereceiver apachesparkreceiver
awscloudwatchreceiver awscontainerinsightreceiver awsecscontainermetricsreceiver awsfirehosereceiver
awss3receiver awsxrayreceiver azureblobreceiver azureeventhubreceiver azuremonitorreceiver bigipreceiver
carbonreceiver chronyreceiver cloudflarereceiver cloudfoundryreceiver collectdreceiver couchdbreceiver
datadogreceiver dockerstatsreceiver elasticsearchreceiver envoyalsreceiver expvarreceiver faroreceiver
filelogreceiver filestatsreceiver flinkmetricsreceiver fluentforwardreceiver githubreceiver
googlecloudmonitoringreceiver googlecloudpubsubreceiver googlecloudspannerreceiver haproxyreceiver
hostmetricsreceiver httpcheckreceiver influxdbreceiver iisreceiver jaegerreceiver jmxreceiver
journaldreceiver k8sclusterreceiver k8seventsreceiver k8sobjectsreceiver kafkametricsreceiver
kafkareceiver kubeletstatsreceiver libhoneyreceiver lokireceiver memcachedreceiver mongodbatlasreceiver
mongodbreceiver mysqlreceiver namedpipereceiver netflowreceiver nginxreceiver nsxtreceiver ntpreceiver
oracledbreceiver otlpjsonfilereceiver otelarrowreceiver podmanreceiver postgresqlreceiver
prometheusreceiver prometheusremotewritereceiver purefareceiver purefbreceiver pulsarreceiver
rabbitmqreceiver receivercreator redisreceiver riakreceiver saphanareceiver signalfxreceiver
simpleprometheusreceiver skywalkingreceiver snowflakereceiver solacereceiver splunkenterprisereceiver
splunkhecreceiver stefreceiver sqlqueryreceiver sqlserverreceiver sshcheckreceiver statsdreceiver
syslogreceiver tcpcheckreceiver tcplogreceiver tlscheckreceiver udplogreceiver vcenterreceiver
wavefrontreceiver snmpreceiver webhookeventreceiver windowseventlogreceiver windowsperfcountersreceiver
zipkinreceiver zookeeperreceiver
"""
)

PROCESSORS = _names(
    """
batchprocessor memorylimiterprocessor attributesprocessor cumulativetodeltaprocessor coralogixprocessor
deltatocumulativeprocessor deltatorateprocessor filterprocessor geoipprocessor groupbyattrsprocessor
groupbytraceprocessor intervalprocessor isolationforestprocessor k8sattributesprocessor
logdedupprocessor metricsgenerationprocessor metricstarttimeprocessor metricstransformprocessor
probabilisticsamplerprocessor redactionprocessor remotetapprocessor resourcedetectionprocessor
resourceprocessor schemaprocessor spanprocessor sumologicprocessor tailsamplingprocessor
transformprocessor
"""
)

EXPORTERS = _names(
    """
debugexporter nopexporter otlpexporter otlphttpexporter alibabacloudlogserviceexporter
awscloudwatchlogsexporter awsemfexporter awskinesisexporter awsxrayexporter awss3exporter
azureblobexporter azuredataexplorerexporter azuremonitorexporter bmchelixexporter carbonexporter
cassandraexporter clickhouseexporter coralogixexporter datadogexporter datasetexporter dorisexporter
elasticsearchexporter faroexporter fileexporter googlecloudexporter googlecloudpubsubexporter
googlemanagedprometheusexporter honeycombmarkerexporter influxdbexporter kafkaexporter
loadbalancingexporter logicmonitorexporter logzioexporter mezmoexporter opensearchexporter
otelarrowexporter prometheusexporter prometheusremotewriteexporter pulsarexporter rabbitmqexporter
sapmexporter sentryexporter signalfxexporter splunkhecexporter stefexporter sumologicexporter
syslogexporter tencentcloudlogserviceexporter tinybirdexporter zipkinexporter
"""
)

EXTENSIONS = _names(
    """
zpagesextension ackextension asapauthextension awsproxy azureauthextension basicauthextension
bearertokenauthextension cgroupruntimeextension datadogextension
awscloudwatchmetricstreamsencodingextension awslogsencodingextension
googlecloudlogentryencodingextension jaegerencodingextension jsonlogencodingextension
otlpencodingextension skywalkingencodingextension textencodingextension zipkinencodingextension
googleclientauthextension headerssetterextension healthcheckextension httpforwarderextension
jaegerremotesampling oauth2clientauthextension dockerobserver ecsobserver ecstaskobserver hostobserver
k8sobserver kafkatopicsobserver oidcauthextension opampextension pprofextension sigv4authextension
filestorage dbstorage redisstorageextension sumologicextension k8sleaderelector
"""
)

CONNECTORS = _names(
    """
forwardconnector countconnector datadogconnector exceptionsconnector failoverconnector
grafanacloudconnector otlpjsonconnector roundrobinconnector routingconnector servicegraphconnector
spanmetricsconnector sumconnector signaltometricsconnector
"""
)

MODULES: dict[str, list[str]] = {
    "receivers": RECEIVERS,
    "processors": PROCESSORS,
    "exporters": EXPORTERS,
    "extensions": EXTENSIONS,
    "connectors": CONNECTORS,
}

# type -> module, where the type is not the module name minus its kind suffix (from metadata.yaml).
TYPE_EXCEPTIONS: dict[str, str] = {
    "memory_limiter": "memorylimiterprocessor",
    "tail_sampling": "tailsamplingprocessor",
    "health_check": "healthcheckextension",
    "probabilistic_sampler": "probabilisticsamplerprocessor",
}

_SUFFIX = {
    "receivers": "receiver",
    "processors": "processor",
    "exporters": "exporter",
    "extensions": "extension",
    "connectors": "connector",
}


def module_of(kind: str, component_type: str) -> str | None:
    """The module providing ``component_type`` of ``kind`` in the pinned version, or None."""
    modules = MODULES[kind]
    candidates = [TYPE_EXCEPTIONS.get(component_type), component_type + _SUFFIX[kind]]
    if not component_type.endswith(_SUFFIX[kind]):
        candidates.append(component_type)  # modules named without the suffix: awsproxy, filestorage
    return next((module for module in candidates if module in modules), None)
