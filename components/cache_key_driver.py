"""A driver that puts what an execution reads outside its inputs into its execution properties, which TFX's cache
keys on. Drivers run under LocalDagRunner; on Kubeflow the pipeline is compiled without caching."""

from tfx.dsl.components.base import base_driver
from tfx.orchestration import data_types_utils
from tfx.orchestration.portable import base_driver as ir_base_driver
from tfx.orchestration.portable import data_types as portable_data_types
from tfx.proto.orchestration import driver_output_pb2


class CacheKeyDriver(base_driver.BaseDriver, ir_base_driver.BaseDriver):
    """Runs before the cache lookup and sets the execution property `KEY` to `cache_key(properties)`."""

    KEY: str  # and a method cache_key(exec_properties) -> str

    def run(self, execution_info: portable_data_types.ExecutionInfo) -> driver_output_pb2.DriverOutput:
        output = driver_output_pb2.DriverOutput()
        data_types_utils.set_metadata_value(
            output.exec_properties[self.KEY], self.cache_key(execution_info.exec_properties)
        )
        return output
