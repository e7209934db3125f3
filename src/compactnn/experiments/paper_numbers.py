"""The numbers Araujo et al., "Understanding and Training Deep Diagonal Circulant Neural
Networks" (ECAI 2020) report for compactnn's six reproductions, as data.

Provenance (every row says which it uses):
  * "Table N" / "§x text": copied from the paper text (/work/shared/seeds/001_*.txt).
  * Figures 2, 3, 4 have no numbers in the paper text (the text is figure placeholders only).
    Where a row gives a figure value, it comes from the first author's thesis repository
    github.com/araujoalexandre/thesis, which holds the raw data behind the same plots:
      - commit 605a86b975c0d69e6aea8bb39c05e74fc86723e7 (2020-07-20):
        figures/chapter3/data/cifar10/{factor,leaky_relu,type}/*.dat and the pgfplots files
        cifar10_factor.tex (legend ReLU(DC)/ReLU(DCDC)/ReLU(DCDCDC)), cifar10_leaky_relu.tex,
        cifar10_type.tex (legend Dense (9M weights)/DCNN/DTNN/Toeplitz network/Low Rank network),
        scatterplot.tex;
      - HEAD 37e1ef8094294642da10b81b74536f5ac6745963: figures/scripts/acdc_regression.csv,
        acdc_cifar10.csv, ch4-graph_cifar10.py, ch4-graph_scatterplots.py (the same numbers as the
        .dat files, and the Fig. 3a/3b curves).
    That these are the very plots printed in the ECAI paper cannot be checked from the paper
    text; the Table 1/Table 2 numbers that appear in both agree (Table 2 truncates the thesis
    values to 3 decimals, e.g. 0.7856 -> 0.785).
  * "code": the authors' repository github.com/araujoalexandre/neuralnet_v1, file xp_acdc.py at
    commit c37f60c8bf26a3b1551624d40b09c546adaad0f5 (2019-08-22): not the paper; given only
    where the paper is silent, and marked.

Row fields: label (the paper's wording), key (the compactnn config / curve name that is the
same model: same family and same depth/rank; our data set differs; None if none), params
(the paper's count as an int; "params_text" is the paper's own string when it rounds, e.g.
"21K"; "params_exact" False when only the rounded value is known), value (in the experiment's
`metric`), status ("ok" | "diverged" | "not reported"), source. Optional: near_keys (configs
that are close but not the same model: list, never used for comparison), key_inferred (True
when the model identity rests on an inference, e.g. an exact parameter-count match, not on a
stated architecture), note, claim (a quotation).
"""

# §6.3, paragraph "Architectures & Hyper-Parameters" (it applies to "the first set of our
# experiments (e.g. experiments on CIFAR-10)"; it is the only place the paper states a
# training budget).
PAPER_TRAINING = {
    "cifar10": {
        "section": "§6.3, 'Architectures & Hyper-Parameters'",
        "quote": ("For the first set of our experiments (e.g. experiments on CIFAR-10), we train all "
                  "networks for 200 epochs, a batch size of 200, Leaky ReLU activation with a "
                  "different slope. We minimize the Cross Entropy Loss with Adam optimizer and use a "
                  "piecewise constant learning rate of 5×10^-5, 2.5×10^-5, 5×10^-6 and 1×10^-6 "
                  "after respectively 40K, 60K and 80K steps."),
        "epochs": 200,
        "batch_size": 200,
        "optimizer": "Adam",
        "loss": "cross entropy",
        "lr_values": [5e-5, 2.5e-5, 5e-6, 1e-6],
        "lr_boundaries_steps": [40_000, 60_000, 80_000],
        "ambiguities": [
            "4 rates, 3 boundaries: read as 5e-5 until 40K steps, 2.5e-5 until 60K, 5e-6 until "
            "80K, 1e-6 after (this is TF piecewise_constant semantics; the authors' configs use "
            "boundaries [40000, 60000, 80000] with 4 values).",
            "200 epochs x 50,000 CIFAR-10 training images / batch 200 = 50,000 steps, so the "
            "60K and 80K boundaries are never reached if one step = one batch of 200 (inferred "
            "arithmetic; the paper does not say how steps are counted).",
            "'Leaky ReLU activation with a different slope': the slope is not given here; §5 "
            "says the best setting (slope 0.5) is used 'in the experimental section'.",
            "Project notes (/work/shared/notes/papers.md) report that the authors' config files "
            "use 10x larger rates (5e-4 ... 1e-5) and weight decay 2e-4; not in the paper.",
        ],
    },
    "mnist_table3": {"section": "§6.2", "stated": "nothing (no epochs, optimizer, lr, batch)"},
    "synthetic_regression": {"section": "§6.1", "stated": "nothing about optimizer, lr, "
                             "iterations, dimension or sample count (see the experiment entry)"},
    "init": {"section": "§5 'Initialization scheme'", "quote": (
        "for each circulant matrix C = circ(c_1 ... c_n), each c_i is randomly drawn from "
        "N(0, σ^2), with σ = sqrt(2/n). Next, for each diagonal matrix D = diag(d_1 ... d_n), each "
        "d_i is drawn randomly and uniformly from {-1, 1} for all i. Finally, all biases in the "
        "network are randomly drawn from N(0, σ'^2), for some small value of σ'.")},
    "youtube8m": {"section": "§6.3", "quote": (
        "We trained our models with the CrossEntropy loss and used Adam optimizer with a 0.0002 "
        "learning rate and a 0.8 exponential decay every 4 million examples."),
        "note": "not one of compactnn's six reproductions"},
}

PAPER_TABLES = {
    # ----------------------------------------------------------------------------------------
    "init-variance": {
        "source": "Araujo et al. 2020, §5: initialization scheme, Proposition 4 and Lemma 2",
        "dataset": "none (a statement about any input x in R^n)",
        "metric": "none: qualitative claims / formulas; every value is None",
        "budget": "none stated: the paper gives no n, depth or number of trials and runs no "
                  "Monte-Carlo check of Proposition 4",
        "rows": [
            {"label": "Initialization scheme", "key": None, "params": None, "value": None,
             "status": "not reported", "source": "§5 'Initialization scheme'",
             "claim": ("The following initialization procedure which is a variant of Xavier "
                       "initialization. First, for each circulant matrix C = circ(c_1 ... c_n), each "
                       "c_i is randomly drawn from N(0, σ^2), with σ = sqrt(2/n). Next, for each "
                       "diagonal matrix D = diag(d_1 ... d_n), each d_i is drawn randomly and "
                       "uniformly from {-1, 1} for all i. Finally, all biases in the network are "
                       "randomly drawn from N(0, σ'^2), for some small value of σ'."),
             "numbers": {"sigma_c": "sqrt(2/n)", "d": "uniform on {-1, +1}",
                         "sigma_bias": "'some small value' (not given)"}},
            {"label": "Proposition 4 (output covariance, independent of depth)", "key": "paper",
             "params": None, "value": None, "status": "not reported", "source": "§5 Proposition 4",
             "claim": ("Let N be a DCNN of depth L initialized according to our procedure, with "
                       "σ' = 0. Assume that all layers 1 to L-1 have ReLU activation functions, and "
                       "that the last layer has the identity activation function. Then, for any "
                       "x ∈ R^n, the covariance matrix of N(x) is (2·Id/n)·||x||_2^2. Moreover, note "
                       "that this covariance does not depend on the depth of the network."),
             "formula": {"cov(N(x))": "(2/n)·||x||^2·I_n",
                         "E||N(x)||^2 (derived: trace of the covariance, outputs have mean 0)":
                             "2·||x||^2 for every depth L"},
             "note": ("key 'paper' = the init scheme named 'paper' in our init-variance curves "
                      "(compactnn's test compares E||z||^2 to (2/n)||x||^2·n = 2||x||^2). The "
                      "claim is about the expectation over the initialization; the paper says "
                      "nothing about the median or the spread.")},
            {"label": "Lemma 2, fixed input u", "key": None, "params": None, "value": None,
             "status": "not reported", "source": "§5 Lemma 2 (first bullet)",
             "claim": ("y = DCu, z = CDu ... Assume u_1 ... u_n is fixed. Then, we have for i ≠ i': "
                       "cov(y_i, y_i') = cov(z_i, z_i') = ... = 0; var(y_i) = var(z_i) = "
                       "Σ_j u_j^2 σ^2; var(ȳ_i) = var(z̄_i) = σ'^2 + Σ_j u_j^2 σ^2")},
            {"label": "Lemma 2, ReLU of a symmetric input", "key": None, "params": None,
             "value": None, "status": "not reported", "source": "§5 Lemma 2 (second bullet)",
             "claim": ("Let x_1 ... x_n be random variables in R such that the p.d.f. of x_i is "
                       "symmetric for all i, and let u_i = ReLU(x_i). We have for i ≠ i': ... "
                       "var(y_i) = var(z_i) = (1/2) Σ_j var(x_i)·σ^2"),
             "note": ("the sum is over j but the paper writes var(x_i) inside it (typo; the proof "
                      "ends with (1/2) Σ_j var(c_{j-i})·var(x_j)).")},
        ],
    },
    # ----------------------------------------------------------------------------------------
    "synthetic-regression": {
        "source": "Araujo et al. 2020, §6.1 'Comparison with ACDC' and Fig. 3a; curve values from "
                  "the thesis repository's figures/scripts/acdc_regression.csv (the data of the "
                  "thesis copy of the same plot, 'Number of Steps' 0-5000, 'Loss' axis clipped to "
                  "[1, 4])",
        "dataset": "synthetic linear regression Y = XW + ε (paper: X, W ~ U[-1, +1], ε ~ N(0, "
                   "0.01) i.e. variance 0.01; dimension and sample count not stated)",
        "metric": "training loss (MSE in the authors' code) at the last logged step; "
                  "'loss_at' gives more steps",
        "budget": ("paper: nothing stated (no optimizer, lr, batch, iterations, dimension). "
                   "code (xp_acdc.py, not the paper): 32-dim X and Y, 10,000 samples, batch 100, "
                   "plain SGD lr 0.01, 5,000 iterations, MSE loss, loss logged every 10 "
                   "iterations; the thesis CSV has steps 0..5000 every 10, consistent with it"),
        "code_setting": {
            "source": "neuralnet_v1 xp_acdc.py @ c37f60c (code, not the paper)",
            "dim": 32, "samples": 10_000, "batch": 100, "optimizer": "SGD", "lr": 0.01,
            "iterations": 5_000, "seed": 1234,
            "X": "np.random.uniform(size=(10000, 32))  -> U[0, 1), NOT U[-1, 1]",
            "W": "np.random.uniform(size=(32, 32))     -> U[0, 1), NOT U[-1, 1]",
            "eps": "np.random.normal(0, 10e-1, ...)     -> std 1.0 (variance 1), NOT variance 0.01",
            "targets": "fed into tf.placeholder(tf.int32, ...) (as written this truncates Y to "
                       "integers)",
            "dc_layer": "c ~ N(0, (1.41/sqrt(2n))^2) (not the paper's sqrt(2/n)), d ~ U{-1,+1}, "
                        "bias ~ N(0, 0.01^2), no activation",
            "acdc_layer": "A, D = 1 + U(-0.01, 0.01), orthonormal DCT-II, bias 0, output "
                          "multiplied by 0.01 after every ACDC layer, no permutations",
            "evidence_it_made_the_figure": ("thesis CSV loss at step 0 is ~60 for all curves: "
                                            "matches E[Y^2] ≈ 65 for U[0,1) data, not ≈ 3.6 for "
                                            "U[-1,1]; the DC plateau ≈ 1.3 matches noise "
                                            "variance 1, not 0.01"),
        },
        "rows": [
            {"label": "Data generation", "key": None, "params": None, "value": None,
             "status": "not reported", "source": "§6.1 text",
             "claim": ("We draw X and W from a uniform distribution between [-1, +1] and ϵ from a "
                       "normal distribution with mean 0 and variance 0.01. The relationship between "
                       "X and Y is defined by Y = XW + ϵ."),
             "numbers": {"X_W_range": [-1, 1], "noise_mean": 0, "noise_variance": 0.01}},
            {"label": "Main claim (Fig. 3a)", "key": None, "params": None, "value": None,
             "status": "not reported", "source": "§6.1 text",
             "claim": ("We first reproduce the experimental setting from [21], and compare both "
                       "approaches using only linear networks (i.e. networks without any ReLU "
                       "activations). ... On this simple setting, while both architectures "
                       "demonstrate good performance, we can observe that DCNNs offer a better "
                       "convergence rate.")},
            {"label": "ACDC + one dense layer (no figure, no number)", "key": None, "params": None,
             "value": None, "status": "not reported", "source": "§6.1 text",
             "claim": ("We also observe that adding a single dense layer improves the convergence "
                       "rate of ACDC in the linear case, which explains the good results of [21].")},
            # Fig. 3a curves. The thesis plot legend: "Cosine Transform -- k layers" = ACDC,
            # "Fourier Transform -- 2 layers" = DC. Values are raw logged losses (not smoothed),
            # on the code's data (see code_setting), so their scale is not comparable to ours.
            {"label": "DC ('Fourier Transform'), 2 layers, linear", "key": None, "params": None,
             "value": 1.3825, "status": "ok",
             "source": "Fig. 3a (values: thesis acdc_regression.csv, column circ_2_layers; last "
                       "logged step 4990)",
             "loss_at": {0: 59.9637, 10: 13.4555, 20: 1.8604, 50: 1.433, 100: 1.3799, 500: 1.3068,
                         1000: 1.3054, 2000: 1.3048, 3000: 1.3042, 4000: 1.3037, 4990: 1.3825},
             "min": 1.2817, "near_keys": ["dc-1", "dc-4"],
             "note": "plateaus at ~1.30 by step ~500"},
            {"label": "ACDC ('Cosine Transform'), 2 layers, linear", "key": None, "params": None,
             "value": 2.0584, "status": "ok",
             "source": "Fig. 3a (values: thesis acdc_regression.csv, column acdc_2_layers; step 5000)",
             "loss_at": {0: 60.6298, 100: 56.5762, 200: 29.8666, 500: 3.4926, 1000: 2.7864,
                         2000: 2.4519, 3000: 2.2711, 4000: 2.1468, 5000: 2.0584},
             "min": 1.9483, "near_keys": ["acdc-1", "acdc-4"]},
            {"label": "ACDC ('Cosine Transform'), 4 layers, linear", "key": "acdc-4",
             "params": None, "value": 1.3787, "status": "ok",
             "source": "Fig. 3a (values: thesis acdc_regression.csv, column acdc_4_layers; step 5000)",
             "loss_at": {0: 60.1843, 100: 57.0101, 200: 5.5508, 500: 1.9918, 1000: 1.7357,
                         2000: 1.5429, 3000: 1.4457, 4000: 1.4034, 5000: 1.3787},
             "min": 1.3463,
             "note": ("same family and depth; the code's ACDC also scales each layer's output "
                      "by 0.01 and uses no permutations, ours uses fixed permutations")},
        ],
    },
    # ----------------------------------------------------------------------------------------
    "nonlinearity": {
        "source": "Araujo et al. 2020, §5 'Non-linearity function' and Fig. 2a/2b; values from the "
                  "thesis data behind the same plots (factor/*.dat, leaky_relu/*.dat)",
        "dataset": "CIFAR-10, flattened (n = 3072; the exact counts 9,216·k + 3,092 confirm "
                   "k hidden DC layers of width 3072 plus a DC classifier)",
        "metric": "test accuracy",
        "budget": "stated (§6.3): 200 epochs, batch 200, Adam, piecewise-constant lr 5e-5 / 2.5e-5 "
                  "/ 5e-6 / 1e-6 at 40K / 60K / 80K steps (the §6.3 paragraph says it covers "
                  "'experiments on CIFAR-10'; that it also covers Fig. 2 is inferred)",
        "text_claims": [
            {"source": "§5 text", "claim": (
                "We empirically found that reducing the number of non-linearities in the networks "
                "simplifies the training of deep neural networks.")},
            {"source": "§5 text", "claim": (
                "In Figure 2(a), “ReLU(DC)” means that we interleave ReLU activation functions "
                "between every diagonal-circulant matrix, whereas ReLU(DCDC) means we interleave a "
                "ReLU activation every other block etc. In both Figure 2(a) and Figure 2(b), we "
                "observe that reducing the non-linearity of the networks can be used to train "
                "deeper networks.")},
            {"source": "§5 text", "claim": (
                "We obtain a maximum accuracy of 0.56 with one ReLU every three layers and "
                "leaky-ReLUs with a slope of 0.5. We hence rely on this setting in the "
                "experimental section."), "value": 0.56,
             "note": ("the figure data give max 0.5522 (ReLU every 3, 30 layers) and 0.5609 "
                      "(slope 0.5, 30 layers); only the latter rounds to 0.56")},
            {"source": "Fig. 2 caption", "claim": (
                "Figure 2(a): impact of increasing the number of ReLU activations in a DCNN. Deep "
                "DCNNs with fewer ReLUs are easier to train. Figure 2(b): impact of increasing the "
                "slope of a Leaky-ReLU in DCNNs. Deep DCNNs with a larger slope are easier to "
                "train.")},
        ],
        "summary_from_figure_data": {
            "ReLU(DC)": "0.5263 at 2 layers; 0.2911 at 20; chance (0.1000) at 30 and 40",
            "ReLU(DCDC)": "0.5281-0.5388 up to 20 layers; 0.4758 at 30; chance at 40",
            "ReLU(DCDCDC)": "trains at every plotted depth 3-39: 0.5328-0.5522",
            "leaky 0.2": "0.5190-0.5245 up to 10 layers; chance at 20, 30, 40",
            "leaky 0.3": "0.5256-0.5349 up to 20 layers; 0.3090 at 30; chance at 40",
            "leaky 0.5": "0.5360 (2) ... 0.5609 (30), 0.5586 (40); never fails",
        },
        "rows": [
        # Fig. 2a, ReLU(DC): a ReLU after every 1 DC layer(s), identity otherwise
        {"label": "ReLU(DC), 2 DC layers", "key": 'relu-every1-depth2', "params": 21524, "value": 0.5263, "status": "ok", "source": "Fig. 2a (values: thesis data factor/1_factor.dat)"},
        {"label": "ReLU(DC), 6 DC layers", "key": None, "params": 58388, "value": 0.5138, "status": "ok", "source": "Fig. 2a (values: thesis data factor/1_factor.dat)", "near_keys": ['relu-every1-depth5']},
        {"label": "ReLU(DC), 10 DC layers", "key": 'relu-every1-depth10', "params": 95252, "value": 0.5224, "status": "ok", "source": "Fig. 2a (values: thesis data factor/1_factor.dat)"},
        {"label": "ReLU(DC), 20 DC layers", "key": 'relu-every1-depth20', "params": 187412, "value": 0.2911, "status": "ok", "source": "Fig. 2a (values: thesis data factor/1_factor.dat)", "note": "trained but far below the shallower nets (not chance)"},
        {"label": "ReLU(DC), 30 DC layers", "key": 'relu-every1-depth30', "params": 279572, "value": 0.1000, "status": "diverged", "source": "Fig. 2a (values: thesis data factor/1_factor.dat)", "note": "0.1000 = chance level (10 classes); the text names no divergence depth"},
        {"label": "ReLU(DC), 40 DC layers", "key": 'relu-every1-depth40', "params": 371732, "value": 0.1000, "status": "diverged", "source": "Fig. 2a (values: thesis data factor/1_factor.dat)", "note": "0.1000 = chance level (10 classes); the text names no divergence depth"},
        # Fig. 2a, ReLU(DCDC): a ReLU after every 2 DC layer(s), identity otherwise
        {"label": "ReLU(DCDC), 6 DC layers", "key": None, "params": 49172, "value": 0.5281, "status": "ok", "source": "Fig. 2a (values: thesis data factor/2_factor.dat)", "near_keys": ['relu-every2-depth5']},
        {"label": "ReLU(DCDC), 10 DC layers", "key": 'relu-every2-depth10', "params": 95252, "value": 0.5388, "status": "ok", "source": "Fig. 2a (values: thesis data factor/2_factor.dat)"},
        {"label": "ReLU(DCDC), 20 DC layers", "key": 'relu-every2-depth20', "params": 187412, "value": 0.5264, "status": "ok", "source": "Fig. 2a (values: thesis data factor/2_factor.dat)"},
        {"label": "ReLU(DCDC), 30 DC layers", "key": 'relu-every2-depth30', "params": 279572, "value": 0.4758, "status": "ok", "source": "Fig. 2a (values: thesis data factor/2_factor.dat)", "note": "trained but far below the shallower nets (not chance)"},
        {"label": "ReLU(DCDC), 40 DC layers", "key": None, "params": 371732, "value": 0.1000, "status": "diverged", "source": "Fig. 2a (values: thesis data factor/2_factor.dat)", "note": "0.1000 = chance level (10 classes); the text names no divergence depth"},
        # Fig. 2a, ReLU(DCDCDC): a ReLU after every 3 DC layer(s), identity otherwise
        {"label": "ReLU(DCDCDC), 3 DC layers", "key": None, "params": 30740, "value": 0.5362, "status": "ok", "source": "Fig. 2a (values: thesis data factor/3_factor.dat)", "note": "our relu-every3-depth2 has no ReLU at all (2 < 3): a linear model, not a near match"},
        {"label": "ReLU(DCDCDC), 9 DC layers", "key": None, "params": 86036, "value": 0.5409, "status": "ok", "source": "Fig. 2a (values: thesis data factor/3_factor.dat)", "near_keys": ['relu-every3-depth10']},
        {"label": "ReLU(DCDCDC), 15 DC layers", "key": None, "params": 141332, "value": 0.5448, "status": "ok", "source": "Fig. 2a (values: thesis data factor/3_factor.dat)"},
        {"label": "ReLU(DCDCDC), 21 DC layers", "key": None, "params": 196628, "value": 0.5465, "status": "ok", "source": "Fig. 2a (values: thesis data factor/3_factor.dat)", "near_keys": ['relu-every3-depth20']},
        {"label": "ReLU(DCDCDC), 30 DC layers", "key": 'relu-every3-depth30', "params": 279572, "value": 0.5522, "status": "ok", "source": "Fig. 2a (values: thesis data factor/3_factor.dat)"},
        {"label": "ReLU(DCDCDC), 39 DC layers", "key": None, "params": 362516, "value": 0.5328, "status": "ok", "source": "Fig. 2a (values: thesis data factor/3_factor.dat)", "near_keys": ['relu-every3-depth40']},
        # Fig. 2b, leaky-ReLU slope 0.2 after every DC layer
        {"label": "Leaky-ReLU 0.2, 2 DC layers", "key": 'leaky0.2-depth2', "params": 21524, "value": 0.5245, "status": "ok", "source": "Fig. 2b (values: thesis data leaky_relu/slope_0.2.dat)"},
        {"label": "Leaky-ReLU 0.2, 6 DC layers", "key": None, "params": 58388, "value": 0.5243, "status": "ok", "source": "Fig. 2b (values: thesis data leaky_relu/slope_0.2.dat)", "near_keys": ['leaky0.2-depth5']},
        {"label": "Leaky-ReLU 0.2, 10 DC layers", "key": 'leaky0.2-depth10', "params": 95252, "value": 0.5190, "status": "ok", "source": "Fig. 2b (values: thesis data leaky_relu/slope_0.2.dat)"},
        {"label": "Leaky-ReLU 0.2, 20 DC layers", "key": 'leaky0.2-depth20', "params": 187412, "value": 0.1000, "status": "diverged", "source": "Fig. 2b (values: thesis data leaky_relu/slope_0.2.dat)", "note": "0.1000 = chance level (10 classes); the text names no divergence depth"},
        {"label": "Leaky-ReLU 0.2, 30 DC layers", "key": 'leaky0.2-depth30', "params": 279572, "value": 0.1000, "status": "diverged", "source": "Fig. 2b (values: thesis data leaky_relu/slope_0.2.dat)", "note": "0.1000 = chance level (10 classes); the text names no divergence depth"},
        {"label": "Leaky-ReLU 0.2, 40 DC layers", "key": None, "params": 371732, "value": 0.1000, "status": "diverged", "source": "Fig. 2b (values: thesis data leaky_relu/slope_0.2.dat)", "note": "0.1000 = chance level (10 classes); the text names no divergence depth"},
        # Fig. 2b, leaky-ReLU slope 0.3 after every DC layer
        {"label": "Leaky-ReLU 0.3, 2 DC layers", "key": 'leaky0.3-depth2', "params": 21524, "value": 0.5256, "status": "ok", "source": "Fig. 2b (values: thesis data leaky_relu/slope_0.3.dat)"},
        {"label": "Leaky-ReLU 0.3, 5 DC layers", "key": 'leaky0.3-depth5', "params": 49172, "value": 0.5341, "status": "ok", "source": "Fig. 2b (values: thesis data leaky_relu/slope_0.3.dat)"},
        {"label": "Leaky-ReLU 0.3, 10 DC layers", "key": 'leaky0.3-depth10', "params": 95252, "value": 0.5349, "status": "ok", "source": "Fig. 2b (values: thesis data leaky_relu/slope_0.3.dat)"},
        {"label": "Leaky-ReLU 0.3, 20 DC layers", "key": 'leaky0.3-depth20', "params": 187412, "value": 0.5303, "status": "ok", "source": "Fig. 2b (values: thesis data leaky_relu/slope_0.3.dat)"},
        {"label": "Leaky-ReLU 0.3, 30 DC layers", "key": 'leaky0.3-depth30', "params": 279572, "value": 0.3090, "status": "ok", "source": "Fig. 2b (values: thesis data leaky_relu/slope_0.3.dat)", "note": "trained but far below the shallower nets (not chance)"},
        {"label": "Leaky-ReLU 0.3, 40 DC layers", "key": None, "params": 371732, "value": 0.1000, "status": "diverged", "source": "Fig. 2b (values: thesis data leaky_relu/slope_0.3.dat)", "note": "0.1000 = chance level (10 classes); the text names no divergence depth"},
        # Fig. 2b, leaky-ReLU slope 0.5 after every DC layer
        {"label": "Leaky-ReLU 0.5, 2 DC layers", "key": 'leaky0.5-depth2', "params": 21524, "value": 0.5360, "status": "ok", "source": "Fig. 2b (values: thesis data leaky_relu/slope_0.5.dat)"},
        {"label": "Leaky-ReLU 0.5, 5 DC layers", "key": 'leaky0.5-depth5', "params": 49172, "value": 0.5430, "status": "ok", "source": "Fig. 2b (values: thesis data leaky_relu/slope_0.5.dat)"},
        {"label": "Leaky-ReLU 0.5, 10 DC layers", "key": 'leaky0.5-depth10', "params": 95252, "value": 0.5443, "status": "ok", "source": "Fig. 2b (values: thesis data leaky_relu/slope_0.5.dat)"},
        {"label": "Leaky-ReLU 0.5, 20 DC layers", "key": 'leaky0.5-depth20', "params": 187412, "value": 0.5599, "status": "ok", "source": "Fig. 2b (values: thesis data leaky_relu/slope_0.5.dat)"},
        {"label": "Leaky-ReLU 0.5, 30 DC layers", "key": 'leaky0.5-depth30', "params": 279572, "value": 0.5609, "status": "ok", "source": "Fig. 2b (values: thesis data leaky_relu/slope_0.5.dat)"},
        {"label": "Leaky-ReLU 0.5, 40 DC layers", "key": 'leaky0.5-depth40', "params": 371732, "value": 0.5586, "status": "ok", "source": "Fig. 2b (values: thesis data leaky_relu/slope_0.5.dat)"},
        ],
    },
    # ----------------------------------------------------------------------------------------
    "size-vs-accuracy": {
        "source": "Araujo et al. 2020, §6.1: Table 1 and Fig. 4a (plus Fig. 3b for ACDC); Fig. 4a / "
                  "3b values from the thesis data behind the same plots (type/*.dat, "
                  "acdc_cifar10.csv)",
        "dataset": "CIFAR-10, flattened (3072 inputs, RGB: Table 1 footnote 2 says 'we use the "
                   "original dataset instead of a monochrome version')",
        "metric": "test accuracy",
        "budget": "stated (§6.3): 200 epochs, batch 200, Adam, piecewise-constant lr 5e-5 / 2.5e-5 "
                  "/ 5e-6 / 1e-6 at 40K / 60K / 80K steps; leaky-ReLU slope 0.5 for DCNN "
                  "(inferred from §5 'we hence rely on this setting' and from the Fig. 4a DCNN "
                  "values equalling the slope-0.5 curve of Fig. 2b)",
        "text_claims": [
            {"source": "§6.1 text", "claim": (
                "Our baseline is a dense feed-forward network with a fixed number of weights (9 "
                "million weights).")},
            {"source": "§6.1 text", "claim": (
                "For each approach, we report the accuracy of several networks with a varying depth "
                "ranging from 1 to 40 (DCNNs, Toeplitz networks) and from 1 to 30 (from DTNNs). For "
                "low-rank networks, we used a fixed depth network and increased the rank of each "
                "matrix from 7 to 40. We also tried to increase the depth of low rank matrices, but "
                "we found that deep low-rank networks are difficult to train so we do not report "
                "the results here. We compare all the networks based on the number of weights from "
                "21K (0.2% of the dense network) to 370K weights (4% of the dense network)")},
            {"source": "§6.1 text", "claim": (
                "We can also see that the DCNNs achieves the maximum accuracy of 56% with 20 layers "
                "(~ 200 K weights) which is as good as the dense networks with only 2% of the "
                "number of weights. Other approaches also offer good trade-off but they are not "
                "able to reach the accuracy of a dense network."), "value": 0.56},
            {"source": "§6.1 text (LDR)", "claim": (
                "a single LDR structured layer followed by a dense layer. ... in the LDR framework, "
                "Toeplitz matrices can be encoded with a residual matrix with rank=2")},
            {"source": "§6.1 text (ACDC, Fig. 3b)", "claim": (
                "We found that networks which are based only on ACDC layers are difficult to train "
                "and offer poor accuracy on CIFAR-10 (we have tried different initialization "
                "schemes including the one from the original paper, and the one we introduce in "
                "this paper).")},
        ],
        "rows": [
            # --- Table 1 (LDR rows use the LDR paper's protocol: one structured n x n layer, then a
            # dense classifier; the DCNN rows are the deep DCNNs of Fig. 4a, not that protocol)
            {"label": "Dense", "key": "dense", "key_inferred": True, "params": 9_400_000,
             "params_text": "9.4M", "params_exact": False, "value": 0.562, "status": "ok",
             "source": "Table 1; Fig. 4a dashed line 'Dense (9M weights)' (thesis dense.dat: 0.562)",
             "note": ("architecture not stated; 9.4M ≈ 3072·3072 + 3072 + 30,730 = 9,470,986 "
                      "(one hidden layer of width n, as our 'dense') is the only plausible fit "
                      "(inferred; two such layers would be 18.9M)")},
            {"label": "DCNN (2 layers)", "key": "dcnn-2", "params": 21_524, "params_text": "21K",
             "value": 0.536, "status": "ok",
             "source": "Table 1; also Fig. 4a (thesis circulant.dat 0.536, slope_0.5.dat 0.5360); "
                       "exact count from the thesis data"},
            {"label": "DCNN (5 layers)", "key": None, "params": 49_172, "params_text": "49K",
             "value": 0.543, "status": "ok",
             "source": "Table 1; also Fig. 4a (thesis circulant.dat 0.543, slope_0.5.dat 0.5430)",
             "near_keys": ["dcnn-4"]},
            {"label": "LDR-TD (r = 2)", "key": None, "params": 64_000, "params_text": "64K",
             "params_exact": False, "value": 0.511, "status": "ok", "source": "Table 1",
             "note": "no LDR-TD config in compactnn"},
            {"label": "LDR-TD (r = 3)", "key": None, "params": 70_000, "params_text": "70K",
             "params_exact": False, "value": 0.473, "status": "ok", "source": "Table 1"},
            {"label": "Toeplitz-like (r = 2)", "key": "toeplitz-like-shl-r2", "params": 46_000,
             "params_text": "46K", "params_exact": False, "value": 0.483, "status": "ok",
             "source": "Table 1",
             "note": "46K = 2rn + n + dense classifier 30,730 = 46,090 at n = 3072 (inferred)"},
            {"label": "Toeplitz-like (r = 3)", "key": None, "params": 52_000, "params_text": "52K",
             "params_exact": False, "value": 0.496, "status": "ok", "source": "Table 1",
             "near_keys": ["toeplitz-like-shl-r2", "toeplitz-like-shl-r4"]},
            # --- Fig. 4a, DCNN curve (deeper points; 2 and 5 layers are the Table 1 rows above)
            {"label": "DCNN (10 layers)", "key": None, "params": 95_252, "params_text": "95K",
             "value": 0.544, "status": "ok",
             "source": "Fig. 4a (thesis circulant.dat 0.544; slope_0.5.dat 0.5443)",
             "near_keys": ["dcnn-8"]},
            {"label": "DCNN (20 layers)", "key": None, "params": 187_412, "params_text": "187K",
             "value": 0.560, "status": "ok",
             "source": "Fig. 4a (thesis circulant.dat 0.560; slope_0.5.dat 0.5599); §6.1 text: "
                       "'maximum accuracy of 56% with 20 layers (~ 200 K weights)'"},
            {"label": "DCNN (30 layers)", "key": None, "params": 279_572, "params_text": "279K",
             "value": 0.561, "status": "ok",
             "source": "Fig. 4a (thesis circulant.dat 0.561; slope_0.5.dat 0.5609)"},
            {"label": "DCNN (40 layers)", "key": None, "params": 371_732, "params_text": "371K",
             "value": 0.559, "status": "ok",
             "source": "Fig. 4a (thesis circulant.dat 0.559; slope_0.5.dat 0.5586)"},
            # --- Fig. 4a, DTNN curve: the data give weights (x1000) only, no depth. Depths 1, 3, 5,
            # 10, 15, 20, 23, 30 are INFERRED (weights ≈ 12,287·k + ~5.7K, 12,287 = d + Toeplitz +
            # bias at n = 3072; consistent with the text's 'from 1 to 30').
            {"label": "DTNN, 18K weights (depth 1, inferred)", "key": None, "params": 18_000,
             "params_text": "18K", "params_exact": False, "value": 0.4794, "status": "ok",
             "source": "Fig. 4a (thesis diag_toeplitz.dat)", "near_keys": ["dtnn-1"]},
            {"label": "DTNN, 43K weights (depth 3, inferred)", "key": None, "params": 43_000,
             "params_text": "43K", "params_exact": False, "value": 0.5111, "status": "ok",
             "source": "Fig. 4a (thesis diag_toeplitz.dat)", "near_keys": ["dtnn-2", "dtnn-4"]},
            {"label": "DTNN, 67K weights (depth 5, inferred)", "key": None, "params": 67_000,
             "params_text": "67K", "params_exact": False, "value": 0.5156, "status": "ok",
             "source": "Fig. 4a (thesis diag_toeplitz.dat)", "near_keys": ["dtnn-4"]},
            {"label": "DTNN, 129K weights (depth 10, inferred)", "key": None, "params": 129_000,
             "params_text": "129K", "params_exact": False, "value": 0.5253, "status": "ok",
             "source": "Fig. 4a (thesis diag_toeplitz.dat)", "near_keys": ["dtnn-8"]},
            {"label": "DTNN, 190K weights (depth 15, inferred)", "key": None, "params": 190_000,
             "params_text": "190K", "params_exact": False, "value": 0.5309, "status": "ok",
             "source": "Fig. 4a (thesis diag_toeplitz.dat)"},
            {"label": "DTNN, 251K weights (depth 20, inferred)", "key": None, "params": 251_000,
             "params_text": "251K", "params_exact": False, "value": 0.5380, "status": "ok",
             "source": "Fig. 4a (thesis diag_toeplitz.dat)"},
            {"label": "DTNN, 288K weights (depth 23, inferred)", "key": None, "params": 288_000,
             "params_text": "288K", "params_exact": False, "value": 0.5399, "status": "ok",
             "source": "Fig. 4a (thesis diag_toeplitz.dat)"},
            {"label": "DTNN, 374K weights (depth 30, inferred)", "key": None, "params": 374_000,
             "params_text": "374K", "params_exact": False, "value": 0.5391, "status": "ok",
             "source": "Fig. 4a (thesis diag_toeplitz.dat)"},
            # --- Fig. 4a, Toeplitz networks (ReLU between Toeplitz layers); depth given in the data
            {"label": "Toeplitz network (2 layers)", "key": "toeplitz-2", "params": 24_000,
             "params_text": "24K", "params_exact": False, "value": 0.4626, "status": "ok",
             "source": "Fig. 4a (thesis toeplitz.dat)"},
            {"label": "Toeplitz network (5 layers)", "key": None, "params": 52_000,
             "params_text": "52K", "params_exact": False, "value": 0.4729, "status": "ok",
             "source": "Fig. 4a (thesis toeplitz.dat)", "near_keys": ["toeplitz-4"]},
            {"label": "Toeplitz network (10 layers)", "key": None, "params": 98_000,
             "params_text": "98K", "params_exact": False, "value": 0.5035, "status": "ok",
             "source": "Fig. 4a (thesis toeplitz.dat)", "near_keys": ["toeplitz-8"]},
            {"label": "Toeplitz network (20 layers)", "key": None, "params": 190_000,
             "params_text": "190K", "params_exact": False, "value": 0.4959, "status": "ok",
             "source": "Fig. 4a (thesis toeplitz.dat)"},
            {"label": "Toeplitz network (30 layers)", "key": None, "params": 282_000,
             "params_text": "282K", "params_exact": False, "value": 0.5028, "status": "ok",
             "source": "Fig. 4a (thesis toeplitz.dat)"},
            {"label": "Toeplitz network (40 layers)", "key": None, "params": 374_000,
             "params_text": "374K", "params_exact": False, "value": 0.4969, "status": "ok",
             "source": "Fig. 4a (thesis toeplitz.dat)"},
            # --- Fig. 4a, low-rank networks: fixed (unstated) depth, rank 'from 7 to 40' per the
            # text; the data give weights only (the same budgets as the DCNN points). The rank of
            # each point is not recoverable, so no key (our lowrank-r2/r8/r32 are depth 2).
            {"label": "Low-rank network, 21K weights", "key": None, "params": 21_000,
             "params_text": "21K", "params_exact": False, "value": 0.286, "status": "ok",
             "source": "Fig. 4a (thesis low_rank.dat)", "near_keys": ["lowrank-r2"]},
            {"label": "Low-rank network, 49K weights", "key": None, "params": 49_000,
             "params_text": "49K", "params_exact": False, "value": 0.393, "status": "ok",
             "source": "Fig. 4a (thesis low_rank.dat)", "near_keys": ["lowrank-r8"]},
            {"label": "Low-rank network, 95K weights", "key": None, "params": 95_000,
             "params_text": "95K", "params_exact": False, "value": 0.475, "status": "ok",
             "source": "Fig. 4a (thesis low_rank.dat)"},
            {"label": "Low-rank network, 187K weights", "key": None, "params": 187_000,
             "params_text": "187K", "params_exact": False, "value": 0.509, "status": "ok",
             "source": "Fig. 4a (thesis low_rank.dat)", "near_keys": ["lowrank-r32"]},
            {"label": "Low-rank network, 279K weights", "key": None, "params": 279_000,
             "params_text": "279K", "params_exact": False, "value": 0.522, "status": "ok",
             "source": "Fig. 4a (thesis low_rank.dat)"},
            {"label": "Low-rank network, 372K weights", "key": None, "params": 372_000,
             "params_text": "372K", "params_exact": False, "value": 0.523, "status": "ok",
             "source": "Fig. 4a (thesis low_rank.dat)"},
            # --- Fig. 3b: ReLU networks on CIFAR-10, test accuracy per epoch (paper caption: 'test
            # accuracy'; the thesis plot's y-axis is mislabelled 'Loss'). value = epoch 200.
            {"label": "ACDC ('Cosine Transform'), 2 layers, ReLU", "key": "acdc-2",
             "key_inferred": True, "params": None, "value": 0.50677, "value_max": 0.5180,
             "status": "ok", "source": "Fig. 3b (thesis acdc_cifar10.csv, acdc_2_layers, epoch 200)",
             "acc_at_epoch": {2: 0.29271, 10: 0.28313, 20: 0.36271, 50: 0.47052, 100: 0.49833,
                              150: 0.50292, 200: 0.50677},
             "note": "width, classifier and init of the paper's ACDC net are not stated"},
            {"label": "ACDC ('Cosine Transform'), 5 layers, ReLU", "key": None, "params": None,
             "value": 0.37479, "value_max": 0.4657, "status": "ok",
             "source": "Fig. 3b (thesis acdc_cifar10.csv, acdc_5_layers, epoch 200)",
             "acc_at_epoch": {2: 0.29469, 10: 0.3876, 20: 0.42063, 50: 0.43562, 100: 0.34667,
                              150: 0.32406, 200: 0.37479},
             "near_keys": ["acdc-4"], "note": "unstable: peaks then falls"},
            {"label": "DC ('Fourier Transform'), 2 layers, ReLU", "key": None, "params": None,
             "value": 0.5153, "value_max": 0.5263, "status": "ok",
             "source": "Fig. 3b (thesis acdc_cifar10.csv, circ_2_layers, epoch 200)",
             "acc_at_epoch": {2: 0.4591, 10: 0.4937, 20: 0.5206, 50: 0.5208, 100: 0.5181,
                              150: 0.5144, 200: 0.5153},
             "near_keys": ["dcnn-2"],
             "note": ("our dcnn-2 uses leaky-ReLU 0.5, this net ReLU; the same model is "
                      "'relu-every1-depth2' of the nonlinearity experiment")},
        ],
        "extra_rows_not_in_paper": [
            {"label": "ACDC, 10 layers, ReLU", "key": None, "params": None, "value": 0.22104,
             "value_max": 0.3700, "status": "ok",
             "source": "thesis acdc_cifar10.csv column acdc_10_layers only (commented out of the "
                       "plot script; not in the paper)"},
        ],
    },
    # ----------------------------------------------------------------------------------------
    "scattering": {
        "source": "Araujo et al. 2020, §6.1 'Exploiting image features', Table 2 and Fig. 4b; "
                  "4-decimal values from the thesis data of the same scatter plot "
                  "(scatterplot.tex / ch4-graph_scatterplots.py)",
        "dataset": "CIFAR-10 (RGB), 2-depth scattering transform (n = 15,552 features, inferred "
                   "from the counts), then BatchNorm, then the structured layer(s)",
        "metric": "test accuracy",
        "budget": "stated (§6.3): 200 epochs, batch 200, Adam, piecewise-constant lr 5e-5 / 2.5e-5 "
                  "/ 5e-6 / 1e-6 at 40K / 60K / 80K steps ('experiments on CIFAR-10'); activation "
                  "and classifier of the scattering models not stated",
        "text_claims": [
            {"source": "§6.1 text", "claim": (
                "Our test architecture consists of 2 depth scattering on the RGB images followed "
                "by a batch norm and LDR or DC layer. To vary the number of parameters of "
                "Scattering+LDR architecture, we increase the rank of the matrix (stacking several "
                "LDR matrices quickly exhausted the memory).")},
            {"source": "§6.1 text", "claim": (
                "First, we can see that the DCNN architecture very much benefits from the "
                "scattering transform and is able to reach a competitive accuracy over 78%. We can "
                "also see that scattering followed by a DC layer systematically outperforms "
                "scattering + LDR or scattering + Toeplitz-like with less parameters.")},
        ],
        "param_count_note": (
            "inferred, n = 15,552: DC(k) = BatchNorm 4n (2n trained + 2n running stats) + k·3n + "
            "DC classifier (n + 20): 124,436 / 217,748 -> '124K' / '217K'. LDR rows match BatchNorm "
            "4n + the structured layer WITHOUT a classifier: LDR-SD 2rn + 2(n-1) + n -> 139,966 / "
            "419,902 ('140K' / '420K'); Toeplitz-like 2rn + n -> 108,864 / 388,800 ('110K' / "
            "'388K'). compactnn counts trained parameters only (BatchNorm 2n)."),
        "rows": [
            {"label": "DC (1 layers)", "key": "scat-dc-1",
             "params": 124_000, "params_text": "124K", "params_exact": False, "value": 0.757,
             "status": "ok", "source": "Table 2 (thesis scatter data: 0.757)"},
            {"label": "DC (3 layers)", "key": "scat-dc-3",
             "params": 217_000, "params_text": "217K", "params_exact": False, "value": 0.785,
             "status": "ok", "source": "Table 2 (thesis scatter data: 0.7856)"},
            {"label": "Ensemble x5 DC (3 layers)", "key": None, "params": 1_080_000,
             "params_text": "1.08M", "params_exact": False, "value": 0.811, "status": "ok",
             "source": "Table 2 (not in the plot data)", "near_keys": ["scat-dc-3"]},
            {"label": "LDR-SD (r = 1)", "key": "scat-ldr-sd-r1", "params": 140_000,
             "params_text": "140K", "params_exact": False, "value": 0.701, "status": "ok",
             "source": "Table 2 (thesis scatter data: 0.7017)",
             "note": "paper's classifier after the LDR layer not stated; ours is a DC classifier"},
            {"label": "LDR-SD (r = 10)", "key": None, "params": 420_000, "params_text": "420K",
             "params_exact": False, "value": 0.728, "status": "ok",
             "source": "Table 2 (thesis scatter data: 0.7286)"},
            {"label": "Toeplitz-like (r = 1)", "key": "scat-toeplitz-like-r1", "params": 110_000,
             "params_text": "110K", "params_exact": False, "value": 0.711, "status": "ok",
             "source": "Table 2 (thesis scatter data: 0.7111)",
             "note": "paper's classifier after the LDR layer not stated; ours is a DC classifier"},
            {"label": "Toeplitz-like (r = 10)", "key": "scat-toeplitz-like-r10", "params": 388_000,
             "params_text": "388K", "params_exact": False, "value": 0.720, "status": "ok",
             "source": "Table 2 (thesis scatter data: 0.7205)"},
        ],
        "extra_rows_not_in_paper": [
            {"label": "Scattering Avg pooling + 3 DC", "key": None, "params": 66_000,
             "params_text": "66K", "value": 0.7535, "status": "ok",
             "source": "thesis scatterplot.tex @ 605a86b only (commented out in the final thesis "
                       "script); whether the ECAI Fig. 4b shows it cannot be checked"},
            {"label": "Scattering by channel + 4 DC", "key": None, "params": 191_000,
             "params_text": "191K", "value": 0.764, "status": "ok",
             "source": "thesis scatterplot.tex @ 605a86b only (as above)"},
        ],
    },
    # ----------------------------------------------------------------------------------------
    "compression": {
        "source": "Araujo et al. 2020, §6.2, Table 3",
        "dataset": "MNIST",
        "metric": "test error (%)",
        "budget": "not stated (no epochs, optimizer, learning rate or batch size for MNIST); the "
                  "HashNet and Dark Knowledge rows cite [6] and [13] and are presumably copied "
                  "from the HashNet paper (inferred, not said)",
        "text_claims": [
            {"source": "§6.2 text", "claim": (
                "Table 3 shows the test error of DCNN against other known compression techniques "
                "on the MNIST datasets. We can observe that DCNN outperforms easily HashNet [6] and "
                "Dark Knowledge [13] with fewer number of parameters. The architecture with Fast "
                "Food (FF) [30] achieves better performance but with convolutional layers and only "
                "1 Fast Food Layer as the last Softmax layer.")},
        ],
        "rows": [
            {"label": "LeNet [17]", "key": "lenet", "key_inferred": True, "params": 4_257_674,
             "value": 0.61, "value_as_accuracy": 0.9939, "status": "ok", "source": "Table 3",
             "note": ("4,257,674 = conv5x5-32 + conv5x5-64 + FC(8·8·64 -> 1024) + FC(1024 -> 10), "
                      "i.e. our 'lenet' (3,274,634 at 28x28 input: FC from 7·7·64) on 32x32 "
                      "input (inferred from the count; the paper only cites [17])")},
            {"label": "DCNN (25,620 params)", "key": "dcnn-8x1024", "key_inferred": True,
             "params": 25_620, "value": 1.74, "value_as_accuracy": 0.9826, "status": "ok",
             "source": "Table 3",
             "note": "architecture not stated; 8·3·1024 + (1024 + 20) = 25,620 exactly (inferred)"},
            {"label": "DCNN (31,764 params)", "key": "dcnn-10x1024", "key_inferred": True,
             "params": 31_764, "value": 1.60, "value_as_accuracy": 0.9840, "status": "ok",
             "source": "Table 3",
             "note": "architecture not stated; 10·3·1024 + (1024 + 20) = 31,764 exactly (inferred)"},
            {"label": "HashNet [6] (46,875 params)", "key": None, "params": 46_875, "value": 2.79,
             "value_as_accuracy": 0.9721, "status": "ok", "source": "Table 3",
             "near_keys": ["hashnet-1/64"],
             "note": ("virtual architecture and compression factor not stated; ours (784-1000-"
                      "1000-1000-10 at 1/64) has 46,666 params. 46,875 = 3,000,000/64 (arithmetic "
                      "only)")},
            {"label": "HashNet [6] (78,125 params)", "key": None, "params": 78_125, "value": 1.99,
             "value_as_accuracy": 0.9801, "status": "ok", "source": "Table 3",
             "near_keys": ["hashnet-1/40"],
             "note": ("ours (1/40) has 72,860 params, 7% fewer; 78,125 = 3,125,000/40 = "
                      "5,000,000/64 (arithmetic only)")},
            {"label": "Dark Knowledge [13] (46,875 params)", "key": None, "params": 46_875,
             "value": 6.32, "value_as_accuracy": 0.9368, "status": "ok", "source": "Table 3",
             "near_keys": ["distilled-dense-59"],
             "note": "student architecture, teacher, T and alpha not stated; ours 46,915 params"},
            {"label": "Dark Knowledge [13] (78,125 params)", "key": None, "params": 78_125,
             "value": 2.16, "value_as_accuracy": 0.9784, "status": "ok", "source": "Table 3",
             "near_keys": ["distilled-dense-98"], "note": "ours 77,920 params"},
        ],
        "no_paper_counterpart": ["dense-59", "dense-98"],
    },
}
