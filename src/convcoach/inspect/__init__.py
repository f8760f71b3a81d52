"""Looking inside a trained net (the lectures' "Inspecting a deep neural net"): filters, occlusion,
maximally activating images, noise and class visualization, saliency, dead ReLUs."""

from .dead_relu import LayerDeadness, dead_relu_report
from .filters import filter_tiles, first_layer_filters
from .max_activation import top_activating
from .noise import NoiseReport, class_visualization, class_visualizations, noise_predictions
from .occlusion import OcclusionResult, occlusion_map, occlusion_maps
from .saliency import saliency_maps

__all__ = [
    "LayerDeadness",
    "NoiseReport",
    "OcclusionResult",
    "class_visualization",
    "class_visualizations",
    "dead_relu_report",
    "filter_tiles",
    "first_layer_filters",
    "noise_predictions",
    "occlusion_map",
    "occlusion_maps",
    "saliency_maps",
    "top_activating",
]
