"""Heatmaps of where a fitted model looked: exact class activation maps, Grad-CAM and
occlusion, and their figures."""
