"""MLflow models-from-code entry: names the vaelab pyfunc class (see vaelab.tracking.pyfunc)."""

from mlflow.models import set_model

from vaelab.tracking.pyfunc import VaelabPyfunc

set_model(VaelabPyfunc())
